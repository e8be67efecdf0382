import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTestDatabases, type TestDatabases } from '../sql/test-databases.js';
import { newEvent } from './contract.js';
import { createPostgresEventStore } from './postgres.js';
import { APPEND_LOCK_KEY, ensureEventStoreSchema } from './schema.js';
import type { SqlEventStore } from './sql-event-store.js';

/**
 * A checkpointed log reader must never skip an event: positions have to grow in commit order even
 * when appends come from separate store instances (separate processes in production), so the
 * in-process queue cannot be what orders them.
 */

let databases: TestDatabases;
let url: string;
const open: SqlEventStore[] = [];

beforeAll(async () => {
  databases = await createTestDatabases(1, { prefix: 'es_gap' });
  url = databases.urls[0]!;
  const admin = createPostgresDatabase({ connectionString: url, max: 1 });
  await ensureEventStoreSchema(admin);
  await admin.close();
}, 60_000);

afterAll(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
  await databases?.drop();
}, 60_000);

async function store(options: Partial<Parameters<typeof createPostgresEventStore>[0]> = {}): Promise<SqlEventStore> {
  const created = await createPostgresEventStore({ urls: [url], poolSize: 4, ...options });
  open.push(created);
  return created;
}

async function truncate(): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('truncate events');
  await client.end();
}

/** Backends of this database waiting for an advisory lock. */
async function advisoryWaiters(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`,
  );
  return rows[0]!.n;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const settledWithin = async (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);

describe('gap safety (PostgreSQL)', () => {
  it('a later append cannot become visible below an open append, and the reader gets both in order', async () => {
    await truncate();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const slow = await store({
      hooks: {
        beforeCommit: async () => {
          holding();
          await gate;
        },
      },
    });
    const fast = await store();
    const reader = await store();
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    try {
      await fast.append('warm-up', [newEvent()], { expectedVersion: 0 });
      let checkpoint = (await reader.readLog(0, { after: 0, maxCount: 10 })).at(-1)!.position;
      expect(checkpoint).toBe(1);

      const a = newEvent('MessageSent', { from: 'A' });
      const b = newEvent('MessageSent', { from: 'B' });
      const fastTransactions = fast.stats().transactions;
      const appendA = slow.append('stream-a', [a], { expectedVersion: 0 });
      await held; // A has its position and its rows written, and is not committed
      const appendB = fast.append('stream-b', [b], { expectedVersion: 0 });
      // B really is running in the database, waiting for the shard's append lock
      await eventually(async () => (await advisoryWaiters(watcher)) === 1, 'B to wait for the append lock');
      expect(await settledWithin(appendB, 200)).toBe(false);
      expect(await reader.readLog(0, { after: checkpoint, maxCount: 10 })).toEqual([]);
      expect(await reader.headPosition(0)).toBe(1);

      release();
      const [resultA, resultB] = await Promise.all([appendA, appendB]);
      expect(resultA.lastPosition).toBe(2);
      expect(resultB.lastPosition).toBe(3);
      // B read the head after getting the lock (a fresh snapshot), so its first try went through
      expect(fast.stats().transactions - fastTransactions).toBe(1);
      const caughtUp = await reader.readLog(0, { after: checkpoint, maxCount: 10 });
      expect(caughtUp.map((e) => [e.position, e.event_id])).toEqual([
        [2, a.event_id],
        [3, b.event_id],
      ]);
      checkpoint = caughtUp.at(-1)!.position;
      expect(checkpoint).toBe(await reader.headPosition(0));
    } finally {
      release();
      await watcher.end();
    }
  }, 30_000);

  it('another writer holding the append lock (as a second process would) orders the store after it', async () => {
    await truncate();
    const appender = await store();
    const reader = await store();
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    try {
      await raw.query('begin');
      await raw.query(`select pg_advisory_xact_lock(${APPEND_LOCK_KEY})`);
      await raw.query(
        `insert into events (stream_id, version, position, event_id, type, data)
         select 'raw', 1, coalesce(max(position), 0) + 1, gen_random_uuid(), 'MessageSent', '{}' from events`,
      );
      const pending = appender.append('store', [newEvent()], { expectedVersion: 0 });
      expect(await settledWithin(pending, 300)).toBe(false);
      expect(await reader.readLog(0, { after: 0, maxCount: 10 })).toEqual([]);
      await raw.query('commit');
      expect(await pending).toMatchObject({ lastPosition: 2 });
      expect((await reader.readLog(0, { after: 0, maxCount: 10 })).map((e) => [e.position, e.stream_id])).toEqual([
        [1, 'raw'],
        [2, 'store'],
      ]);
    } finally {
      await raw.end();
    }
  }, 30_000);

  it('a polling reader sees every position exactly once while two instances append concurrently', async () => {
    await truncate();
    const batched = await store({ mode: 'group-commit' });
    const single = await store({ mode: 'one-tx-per-append' });
    const reader = await store();
    const perInstance = 1_000;
    const writers = 50;
    const appended = new Set<string>();
    const run = async (target: SqlEventStore, name: string) => {
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let version = 0; version < perInstance / writers; version++) {
            const event = newEvent('MessageSent', { name, w, version });
            await target.append(`${name}-${w}`, [event], { expectedVersion: version });
            appended.add(event.event_id);
          }
        }),
      );
    };

    const seen: number[] = [];
    const seenIds = new Set<string>();
    const violations: string[] = [];
    let checkpoint = 0;
    let writing = true;
    let polls = 0;
    const poll = async () => {
      for (;;) {
        const done = !writing; // decided before reading, so the last read happens after every commit
        const batch = await reader.readLog(0, { after: checkpoint, maxCount: 250 });
        polls += 1;
        for (const event of batch) {
          if (event.position !== checkpoint + 1) violations.push(`after ${checkpoint} came ${event.position}`);
          checkpoint = event.position;
          seen.push(event.position);
          seenIds.add(event.event_id);
        }
        if (done && batch.length === 0) return;
        if (batch.length === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const polling = poll().then(
      () => undefined,
      (error: unknown) => error,
    );
    try {
      await Promise.all([run(batched, 'batched'), run(single, 'single')]);
    } finally {
      writing = false;
      const pollError = await polling;
      // biome-ignore lint/correctness/noUnsafeFinally: the poller is awaited even when a writer threw, and its failure fails the test
      if (pollError !== undefined) throw pollError;
    }

    const total = 2 * perInstance;
    expect(violations).toEqual([]);
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(seenIds).toEqual(appended);
    expect(polls).toBeGreaterThan(5); // it really read while the writers were writing
  }, 60_000);
});
