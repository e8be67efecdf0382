import { createPostgresDatabase } from '../sql/postgres.js';
import type { EventStore } from '../../domain/ports/event-store.js';
import { createSqlEventStore, type AppendMode, type SqlEventStore, type WriterHooks } from './sql-event-store.js';

export { ensureEventStoreSchema } from './schema.js';

export type PostgresEventStoreOptions = {
  /** One PostgreSQL database per shard: shard i is urls[i]. */
  urls: string[];
  /** Default 'group-commit'. */
  mode?: AppendMode;
  /** Most events per group-commit transaction (default 1000). */
  maxBatch?: number;
  /** Group-commit batches in flight per shard (default 2). */
  pipeline?: number;
  /** Connections per shard (default 10); in 'one-tx-per-append' mode also the concurrent append transactions per shard. */
  poolSize?: number;
  applicationName?: string;
  hooks?: WriterHooks;
  onListenerError?: (error: unknown) => void;
};

/** The event store on PostgreSQL, one pool per shard; creates the tables when missing. */
export async function createPostgresEventStore(options: PostgresEventStoreOptions): Promise<SqlEventStore> {
  if (options.urls.length === 0) throw new RangeError('createPostgresEventStore needs at least one database url');
  const poolSize = options.poolSize ?? 10;
  const shards = options.urls.map((connectionString) =>
    createPostgresDatabase({ connectionString, max: poolSize, applicationName: options.applicationName ?? 'event-store' }),
  );
  const store = await createSqlEventStore({
    shards,
    ownsDatabases: true,
    concurrency: poolSize,
    mode: options.mode,
    maxBatch: options.maxBatch,
    pipeline: options.pipeline,
    hooks: options.hooks,
    onListenerError: options.onListenerError,
  });
  return store satisfies EventStore;
}
