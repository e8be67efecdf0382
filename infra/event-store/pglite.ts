import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import type { EventStore } from '../../domain/ports/event-store.js';
import { createSqlEventStore, type AppendMode, type SqlEventStore, type WriterHooks } from './sql-event-store.js';

export type PgliteEventStoreOptions = {
  /**
   * Existing PGlite databases, one per shard (e.g. shared with read models). When given they are
   * not closed by the store unless ownsDatabases is true.
   */
  databases?: SqlDatabase[];
  /** Without `databases`: one shard per entry, a data directory or undefined for in memory (default: one in-memory shard). */
  dataDirs?: (string | undefined)[];
  ownsDatabases?: boolean;
  /** Default 'group-commit'. */
  mode?: AppendMode;
  maxBatch?: number;
  /** Group-commit batches in flight per shard (default 1: PGlite runs in this thread). */
  pipeline?: number;
  hooks?: WriterHooks;
  onListenerError?: (error: unknown) => void;
};

/** The embedded event store: PGlite databases as shards; creates the tables when missing. */
export async function createPgliteEventStore(options: PgliteEventStoreOptions = {}): Promise<SqlEventStore> {
  let shards: SqlDatabase[];
  let owns: boolean;
  if (options.databases !== undefined) {
    const notPglite = options.databases.find((db) => db.kind !== 'pglite');
    if (notPglite !== undefined) throw new TypeError(`createPgliteEventStore takes PGlite databases, got a ${notPglite.kind} one`);
    shards = options.databases;
    owns = options.ownsDatabases ?? false;
  } else {
    const dirs = options.dataDirs ?? [undefined];
    shards = [];
    try {
      for (const dataDir of dirs) shards.push(await createPgliteDatabase(dataDir === undefined ? {} : { dataDir }));
    } catch (error) {
      await Promise.allSettled(shards.map((db) => db.close()));
      throw error;
    }
    owns = options.ownsDatabases ?? true;
  }
  const store = await createSqlEventStore({
    shards,
    ownsDatabases: owns,
    mode: options.mode,
    maxBatch: options.maxBatch,
    pipeline: options.pipeline,
    hooks: options.hooks,
    onListenerError: options.onListenerError,
  });
  return store satisfies EventStore;
}
