import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../sql/postgres.js';
import type { SqlDatabase } from '../sql/port.js';
import { createTestDatabases, type TestDatabases } from '../sql/test-databases.js';
import { eventStoreContract, newEvent } from './contract.js';
import { createPostgresEventStore, ensureEventStoreSchema } from './postgres.js';
import type { AppendMode } from './sql-event-store.js';

// Two real PostgreSQL databases as two shards, emptied before each store the contract asks for.
let databases: TestDatabases;
let admins: SqlDatabase[] = [];

beforeAll(async () => {
  databases = await createTestDatabases(2, { prefix: 'es_test' });
  admins = databases.urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 1 }));
  for (const admin of admins) await ensureEventStoreSchema(admin);
}, 60_000);

afterAll(async () => {
  await Promise.all(admins.map((admin) => admin.close()));
  await databases?.drop();
}, 60_000);

for (const mode of ['group-commit', 'one-tx-per-append'] as AppendMode[]) {
  eventStoreContract(`postgres ${mode}`, {
    groupCommit: mode === 'group-commit',
    async create({ shards }) {
      for (const admin of admins) await admin.exec('truncate events');
      return createPostgresEventStore({ urls: databases.urls.slice(0, shards), mode, poolSize: 4 });
    },
  });
}

describe('postgres SqlDatabase', () => {
  it('returns bigint as number and timestamptz as Date, and rolls a failed transaction back', async () => {
    const db = admins[0]!;
    const { rows } = await db.query<{ big: unknown; at: unknown }>('select 9007199254740991::bigint as big, now() as at');
    expect(rows[0]!.big).toBe(Number.MAX_SAFE_INTEGER);
    expect(rows[0]!.at).toBeInstanceOf(Date);
    await db.exec('truncate events');
    await expect(
      db.transaction(async (tx) => {
        await tx.query(
          `insert into events (stream_id, version, position, event_id, type, data) values ('s', 1, 1, gen_random_uuid(), 'T', '{}')`,
        );
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await db.query('select count(*)::int as n from events')).rows[0]).toEqual({ n: 0 });
  });
});

describe('createPostgresEventStore', () => {
  it('creates the schema in an empty database and serves reads from a second instance', async () => {
    const extra = await createTestDatabases(1, { prefix: 'es_test' });
    try {
      const writer = await createPostgresEventStore({ urls: extra.urls });
      const reader = await createPostgresEventStore({ urls: extra.urls, poolSize: 2 });
      const event = newEvent('MessageSent', { content: 'x'.repeat(150) });
      await writer.append('conversation-1', [event], { expectedVersion: 0 });
      expect((await reader.readStream('conversation-1')).map((e) => e.event_id)).toEqual([event.event_id]);
      // the second instance sees the first one's writes through the database, not its memory
      await expect(reader.append('conversation-1', [newEvent()], { expectedVersion: 0 })).rejects.toMatchObject({ actualVersion: 1 });
      await Promise.all([writer.close(), reader.close()]);
    } finally {
      await extra.drop();
    }
  }, 30_000);
});
