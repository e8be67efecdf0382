import { createConversationCommands } from '../../commands/conversations.js';
import type { UserDirectory } from '../../domain/ports/directory.js';
import { createSqlEventStore, type SqlEventStore } from '../../infra/event-store/sql-event-store.js';
import { createPgliteDatabase } from '../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../../infra/sql/postgres.js';
import { createTempDatabases } from '../../infra/testing/postgres.js';
import { conversationsProjection } from '../conversations/projection.js';
import { createConversationQueries } from '../conversations/queries.js';
import { createProjector } from '../runtime/runtime.js';
import { conversationEvents } from '../runtime/decode.js';

export type Adapter = 'pglite' | 'postgres';

/** Users known to the command side in these tests: every id that `register` was given. */
export function createTestUserDirectory(): UserDirectory & { register(...ids: string[]): void } {
  const known = new Set<string>();
  return {
    register: (...ids) => {
      for (const id of ids) known.add(id);
    },
    existing: async (ids) => new Set(ids.filter((id) => known.has(id))),
  };
}

/**
 * The command and query sides over a real store: PGlite in memory, or PostgreSQL with `shards`
 * throw-away databases. Read models live in the first shard's database, as in gateways/compose/process.ts.
 */
export async function createTestStack(adapter: Adapter, options: { shards?: number; startProjector?: boolean } = {}) {
  const shardCount = options.shards ?? 1;
  let dbs: SqlDatabase[];
  let drop = async () => {};
  let urls: string[] = [];
  if (adapter === 'pglite') {
    dbs = await Promise.all(Array.from({ length: shardCount }, () => createPgliteDatabase()));
  } else {
    const temp = await createTempDatabases('proj_test', shardCount);
    drop = temp.drop;
    urls = temp.urls;
    dbs = temp.urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 5 }));
  }
  const store: SqlEventStore = await createSqlEventStore({ shards: dbs, ownsDatabases: false });
  const readModels = dbs[0]!;
  const users = createTestUserDirectory();
  const commands = createConversationCommands({ store, users, clock: () => new Date() });
  const projector = createProjector({ store, db: readModels, projections: [conversationsProjection], decode: conversationEvents, batchSize: 100, pollIntervalMs: 50 });
  if (options.startProjector ?? true) await projector.start();
  else await projector.ensureSchema();
  const queries = createConversationQueries(readModels);
  return {
    /** The shard databases' URLs (PostgreSQL only). */
    urls,
    store,
    readModels,
    users,
    commands,
    projector,
    queries,
    async close() {
      await projector.stop();
      await store.close();
      await Promise.allSettled(dbs.map((db) => db.close()));
      await drop();
    },
  };
}

/** Every row of the read model's tables, in a stable order, for comparing two builds. */
export async function dumpReadModel(db: SqlDatabase): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of conversationsProjection.tables) {
    const { rows } = await db.query(`SELECT * FROM ${table}`);
    out[table] = rows.map((r) => JSON.stringify(r, Object.keys(r).sort())).sort();
  }
  return out;
}
