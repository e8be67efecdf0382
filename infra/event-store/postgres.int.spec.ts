import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../sql/postgres.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createTestDatabases, type TestDatabases } from '../sql/test-databases.js';
import { eventStoreContract, newEvent } from './contract.js';
import { createPostgresEventStore, ensureEventStoreSchema } from './postgres.js';
import { createSqlEventStore, type AppendMode } from './sql-event-store.js';

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

describe('the log tail (log-tail.ts)', () => {
  it("answers a process's second reader from memory, and still from the database past what it holds, including another instance's appends", async () => {
    const extra = await createTestDatabases(1, { prefix: 'es_test' });
    try {
      const core = await createPostgresEventStore({ urls: extra.urls, poolSize: 2 });
      const gateway = await createPostgresEventStore({ urls: extra.urls, poolSize: 2 });
      await gateway.append('conversation-1', [newEvent(), newEvent(), newEvent()], { expectedVersion: 0 });
      const relayRead = await core.readLog(0, { after: 0, maxCount: 500 });
      expect(relayRead.map((e) => e.position)).toEqual([1, 2, 3]);
      await gateway.append('conversation-2', [newEvent(), newEvent()], { expectedVersion: 0 });
      const projectorRead = await core.readLog(0, { after: 0, maxCount: 500 });
      expect(projectorRead.map((e) => e.position)).toEqual([1, 2, 3, 4, 5]);
      // The first three are the very objects the first read made: parsed once.
      projectorRead.slice(0, 3).forEach((event, i) => {
        expect(event).toBe(relayRead[i]);
      });
      // And what they hold is what the database holds.
      expect(projectorRead).toEqual(await gateway.readLog(0, { after: 0, maxCount: 500 }));
      await Promise.all([core.close(), gateway.close()]);
    } finally {
      await extra.drop();
    }
  }, 30_000);
});

describe('appends of other processes (LISTEN / NOTIFY)', () => {
  const until = async (check: () => boolean | Promise<boolean>, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it("wake another instance's onAppended listeners with the new head, once each, and again after its LISTEN connection was cut", async () => {
    const extra = await createTestDatabases(1, { prefix: 'es_test' });
    const admin = createPostgresDatabase({ connectionString: extra.urls[0]!, max: 1 });
    const errors: unknown[] = [];
    try {
      const writer = await createPostgresEventStore({ urls: extra.urls });
      const watcher = await createPostgresEventStore({ urls: extra.urls, poolSize: 1, onListenerError: (error) => errors.push(error) });
      const listening = async () =>
        (await admin.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where datname = current_database() and query = 'LISTEN event_store_appended' and state = 'idle'",
        )).rows[0]!.n === 1;
      const seen: number[] = [];
      const unsubscribe = watcher.onAppended((shard, head) => seen.push(shard === 0 ? head : -1));
      await until(listening, 'the LISTEN connection');

      await writer.append('conversation-1', [newEvent(), newEvent()], { expectedVersion: 0 });
      await until(() => seen.includes(2), 'the first notification');
      await writer.append('conversation-2', [newEvent()], { expectedVersion: 0 });
      await until(() => seen.includes(3), 'the second notification');
      expect(seen).toEqual([2, 3]);

      // Cut the connection: it comes back, and the listeners are told to look for themselves
      // (notifications sent meanwhile are lost), then hear the next append again.
      await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query = 'LISTEN event_store_appended'");
      await until(() => seen.includes(Number.MAX_SAFE_INTEGER), 'the wake-up after reconnecting');
      await until(listening, 'the LISTEN connection again');
      await writer.append('conversation-1', [newEvent()], { expectedVersion: 2 });
      await until(() => seen.includes(4), 'a notification after reconnecting');
      expect(seen).toEqual([2, 3, Number.MAX_SAFE_INTEGER, 4]);
      expect(errors.length).toBeGreaterThan(0);

      unsubscribe();
      await Promise.all([writer.close(), watcher.close()]);
      // close() also ends the LISTEN connection
      await until(async () => !(await listening()), 'the LISTEN connection to end');
    } finally {
      await admin.close();
      await extra.drop();
    }
  }, 30_000);
});

describe('group commit over PostgreSQL', () => {
  it('sends a batch of other streams while the batch before it is still in the database, and keeps one stream in queue order', async () => {
    const admin = admins[0]!;
    await admin.exec('truncate events');
    const pool = createPostgresDatabase({ connectionString: databases.urls[0]!, max: 4 });
    // Counts the append statements the database is working on at the same time.
    let appending = 0;
    let mostAppending = 0;
    const watched: SqlDatabase = {
      ...pool,
      kind: pool.kind,
      exec: (sql) => pool.exec(sql),
      transaction: (fn) => pool.transaction(fn),
      async query(text, params) {
        const isAppend = text.includes('event_store_append');
        if (isAppend) mostAppending = Math.max(mostAppending, ++appending);
        try {
          return await pool.query(text, params);
        } finally {
          if (isAppend) appending--;
        }
      },
    };
    const store = await createSqlEventStore({ shards: [watched], ownsDatabases: true, maxBatch: 1, pipeline: 2, migrate: false });
    try {
      // Given one batch per call (maxBatch 1): ten single streams, and a chain of ten appends to
      // one stream, each expecting the version the call before it leaves.
      const singles = Array.from({ length: 10 }, (_, i) => store.append(`single-${i}`, [newEvent('MessageSent')], { expectedVersion: 0 }));
      const chain = Array.from({ length: 10 }, (_, i) => store.append('chain', [newEvent('MessageSent')], { expectedVersion: i }));
      // When they are all queued in one tick, then every one is stored,
      const results = await Promise.all([...singles, ...chain]);
      expect(results).toHaveLength(20);
      // the chain in queue order,
      expect((await store.readStream('chain')).map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      // and two batches were in the database at once (the second waiting for the append lock there).
      expect(mostAppending).toBe(2);
      // The log is gap-free whatever order the lock gave.
      const log = await store.readLog(0, { after: 0, maxCount: 100 });
      expect(log.map((e) => e.position)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    } finally {
      await store.close();
    }
  }, 30_000);
});
