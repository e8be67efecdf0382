import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTempDatabases } from '../testing/postgres.js';
import { catchUp, subscribeToAll } from './catch-up.js';
import type { EventStore, StoredEvent } from '../../domain/ports/event-store.js';
import { createSqlEventStore } from './sql-event-store.js';

/** Waits (bounded) until `check` holds; no fixed sleeps. */
async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.each([
  ['pglite', 1],
  ['postgres', 2],
] as const)('catch-up subscription on %s (%i shards)', (adapter, shardCount) => {
  let dbs: SqlDatabase[] = [];
  let drop = async () => {};
  let urls: string[] = [];
  /** The subscriber's store. */
  let store: EventStore;
  /** On PostgreSQL, a second store over the same databases stands for another process: its appends wake nobody here, they are found by polling. */
  let other: EventStore;
  const versions = new Map<string, number>();
  const appended = new Set<string>();

  beforeAll(async () => {
    if (adapter === 'pglite') dbs = [await createPgliteDatabase()];
    else {
      const temp = await createTempDatabases('catchup', shardCount);
      drop = temp.drop;
      urls = temp.urls;
      dbs = temp.urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 4 }));
    }
    store = await createSqlEventStore({ shards: dbs, ownsDatabases: false });
    other = adapter === 'postgres' ? await createSqlEventStore({ shards: urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 2 })), ownsDatabases: true, migrate: false }) : store;
  });
  afterAll(async () => {
    if (other !== store) await other.close();
    await store?.close();
    await Promise.allSettled(dbs.map((db) => db.close()));
    await drop();
  });

  /** Appends `count` events spread over 20 streams, `parallel` appends at a time, through `via`. */
  async function appendMany(via: EventStore, count: number, parallel = 10): Promise<void> {
    let next = 0;
    const streamFor = (i: number) => `test-${i % 20}`;
    // One append per stream at a time (expected versions), many streams at once.
    const lanes = Array.from({ length: parallel }, async (_, lane) => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        const streamId = streamFor(i * parallel + lane);
        const id = randomUUID();
        for (;;) {
          const expectedVersion = versions.get(streamId) ?? (await via.streamVersion(streamId));
          try {
            const result = await via.append(streamId, [{ event_id: id, type: 'Test', data: { i } }], { expectedVersion });
            versions.set(streamId, result.nextExpectedVersion);
            break;
          } catch {
            versions.delete(streamId); // another lane moved it: read again
          }
        }
        appended.add(id);
      }
    });
    await Promise.all(lanes);
  }

  it('delivers history then live appends made while it catches up: contiguous positions, no duplicate, no gap', async () => {
    await appendMany(store, 300);
    const received: StoredEvent[][] = Array.from({ length: shardCount }, () => []);
    const subscription = subscribeToAll({ store, batchSize: 37, pollIntervalMs: 20, handler: (e) => void received[e.shard]!.push(e) });
    // Appends race with the catch-up: some from this process (woken by the store), some from another (found by polling).
    await Promise.all([appendMany(store, 200), appendMany(other, 200)]);
    const total = () => received.reduce((n, r) => n + r.length, 0);
    await until(() => total() >= appended.size, 'every appended event');

    const heads = await Promise.all(received.map((_, shard) => store.headPosition(shard)));
    for (const [shard, events] of received.entries()) {
      expect(events.map((e) => e.position)).toEqual(Array.from({ length: heads[shard]! }, (_, i) => i + 1));
      expect(events.every((e) => e.shard === shard)).toBe(true);
    }
    const ids = received.flat().map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(appended);
    expect(subscription.positions()).toEqual(heads);

    // Caught up, it keeps following: later appends arrive, still contiguous.
    await appendMany(store, 15);
    await appendMany(other, 15);
    await until(() => total() >= appended.size, 'the live appends');
    for (const [shard, events] of received.entries()) {
      expect(events.map((e) => e.position)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
      expect(events.length).toBe(await store.headPosition(shard));
    }
    expect(total()).toBe(appended.size);
    await subscription.stop();
  });

  it('starts after a given position, and ends when its signal aborts', async () => {
    const head = await store.headPosition(0);
    const controller = new AbortController();
    const seen: number[] = [];
    const reading = (async () => {
      for await (const event of catchUp({ store, shard: 0, after: head - 5, signal: controller.signal, pollIntervalMs: 20 })) {
        seen.push(event.position);
        if (seen.length === 5) controller.abort();
      }
    })();
    await reading;
    expect(seen).toEqual([head - 4, head - 3, head - 2, head - 1, head]);
  });

  it('a handler that throws stops the subscription and reports its error', async () => {
    const subscription = subscribeToAll({
      store,
      from: Array.from({ length: shardCount }, () => 0),
      handler: () => {
        throw new Error('handler failed');
      },
    });
    await expect(subscription.done).rejects.toThrow('handler failed');
    await subscription.stop();
  });

  it('refuses a shard that does not exist and a negative position', async () => {
    await expect(catchUp({ store, shard: shardCount, after: 0 }).next()).rejects.toThrow(/shard .* does not exist/);
    await expect(catchUp({ store, shard: 0, after: -1 }).next()).rejects.toThrow(/non-negative/);
  });
});
