import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOutage } from '../../domain/ports/health.js';
import { createTempDatabases } from '../testing/postgres.js';
import { terminateBackendsRepeatedly } from '../testing/terminate-backends.js';
import { subscribeToAll } from './catch-up.js';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import { createPostgresEventStore } from './postgres.js';
import type { SqlEventStore } from './sql-event-store.js';

/**
 * The event store while PostgreSQL drops its connections (pg_terminate_backend of every backend of
 * the test databases, again and again, as a server restart does): appends fail as "unavailable"
 * and succeed when retried with the same event ids, the shard writers and the coalesced stream
 * reads take the next batch after a failed one, and a catch-up subscription rides it out.
 * Nothing is lost or written twice.
 */
describe('event store on PostgreSQL while its connections are terminated', () => {
  let temp: Awaited<ReturnType<typeof createTempDatabases>>;
  let store: SqlEventStore;

  beforeAll(async () => {
    temp = await createTempDatabases('es_terminated', 2);
    store = await createPostgresEventStore({ urls: temp.urls, poolSize: 4 });
  });
  afterAll(async () => {
    await store?.close();
    await temp?.drop();
  });

  it('appends retried after a lost connection land once each, in order, and a catch-up subscription sees every event once', async () => {
    const seen: StoredEvent[] = [];
    let outages = 0;
    const subscription = subscribeToAll({ store, pollIntervalMs: 20, handler: (event) => void seen.push(event), onOutage: () => void outages++ });
    const streams = Array.from({ length: 8 }, () => `conversation-${randomUUID()}`);
    const perStream = 10;
    let retries = 0;
    const terminator = terminateBackendsRepeatedly(temp.names, { everyMs: 150, rounds: 8 });

    await Promise.all(
      streams.map(async (streamId) => {
        for (let version = 0; version < perStream; version++) {
          const events = [{ event_id: randomUUID(), type: 'MessageSent', data: { n: version } }];
          // A client retries an append the store could not confirm, with the same event id.
          for (;;) {
            try {
              // Reads go through the coalesced stream reader, as every command's load does.
              expect((await store.readStream(streamId)).length).toBeGreaterThanOrEqual(version);
              await store.append(streamId, events, { expectedVersion: version });
              break;
            } catch (error) {
              if (!isOutage(error)) throw error;
              retries++;
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
          }
        }
      }),
    );
    const terminated = await terminator.done;
    expect(terminated).toBeGreaterThan(0);
    expect(retries).toBeGreaterThan(0); // the fault did reach the appends

    for (const streamId of streams) {
      const stored = await store.readStream(streamId);
      expect(stored.map((e) => e.version)).toEqual(Array.from({ length: perStream }, (_, i) => i + 1));
      expect(stored.map((e) => (e.data as { n: number }).n)).toEqual(Array.from({ length: perStream }, (_, i) => i));
    }
    const total = streams.length * perStream;
    const deadline = Date.now() + 15_000;
    while (seen.length < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await subscription.stop();
    await expect(subscription.done).resolves.toBeUndefined();
    expect(seen).toHaveLength(total);
    expect(new Set(seen.map((e) => e.event_id)).size).toBe(total);
    for (let shard = 0; shard < store.shardCount; shard++) {
      const positions = seen.filter((e) => e.shard === shard).map((e) => e.position);
      expect(positions).toEqual(Array.from({ length: positions.length }, (_, i) => i + 1));
    }
    expect(outages + retries).toBeGreaterThan(0);
  });
});
