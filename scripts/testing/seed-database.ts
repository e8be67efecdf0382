/**
 * Fills a PostgreSQL event store with conversations for measuring rebuilds (BENCHMARKS.md,
 * "Projection rebuild"): `node --import tsx scripts/testing/seed-database.ts URL[,URL...] GROUPS MESSAGES_PER_GROUP`.
 */
import { createSqlEventStore } from '../../infra/event-store/sql-event-store.js';
import { createPostgresDatabase } from '../../infra/sql/postgres.js';
import { seedConversations } from './seed.js';

const [urls = '', groups = '100', messages = '100'] = process.argv.slice(2);
if (urls === '') {
  process.stderr.write('usage: seed-database.ts URL[,URL...] GROUPS MESSAGES_PER_GROUP\n');
  process.exit(2);
}
const store = await createSqlEventStore({ shards: urls.split(',').map((connectionString) => createPostgresDatabase({ connectionString, max: 10 })), ownsDatabases: true });
await seedConversations(store, { groups: Number(groups), messagesPerGroup: Number(messages) });
const heads = await Promise.all(Array.from({ length: store.shardCount }, (_, shard) => store.headPosition(shard)));
process.stdout.write(`${JSON.stringify({ events: heads.reduce((a, b) => a + b, 0), heads })}\n`);
await store.close();
