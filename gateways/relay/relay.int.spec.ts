import { randomBytes, randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteEventStore } from '../../infra/event-store/pglite.js';
import type { EventStore, StoredEvent } from '../../domain/ports/event-store.js';
import { createPostgresEventStore } from '../../infra/event-store/postgres.js';
import { ensureEventStoreSchema } from '../../infra/event-store/schema.js';
import { wrapPglite } from '../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../../infra/sql/postgres.js';
import { createTestDatabases, type TestDatabases } from '../../infra/sql/test-databases.js';
import { delay, eventually, startMember, type Member } from '../../infra/bus/contract.js';
import { createJetStreamBus, type JetStreamBus } from '../../infra/bus/jetstream.js';
import { createMemoryBus } from '../../infra/bus/memory.js';
import type { EventBus } from '../ports/bus.js';
import { createRelay, type Relay, type RelayDeps } from './relay.js';
import { isOutage } from '../../domain/ports/health.js';
import { terminateBackendsRepeatedly } from '../../infra/testing/terminate-backends.js';

// store (PGlite in memory, and PostgreSQL) → relay → JetStream (the machine's nats-server,
// a fresh stream prefix per test) → one consumer group that records what it receives.
const SERVERS = process.env.TEST_NATS_URL ?? '127.0.0.1:4222';

type World = { kind: string; store: EventStore; db: SqlDatabase; close(): Promise<void> };

let pgDatabases: TestDatabases;
let pgAdmins: SqlDatabase[] = [];
/** Two in-memory PGlite shards for the whole file (the second a clone: much faster than starting another). */
let pglites: SqlDatabase[] = [];

beforeAll(async () => {
  const first = await PGlite.create();
  pglites = [wrapPglite(first), wrapPglite(await first.clone())];
  pgDatabases = await createTestDatabases(2, { prefix: 'relay_test' });
  pgAdmins = pgDatabases.urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 2 }));
  for (const db of [...pglites, ...pgAdmins]) await ensureEventStoreSchema(db);
}, 60_000);

afterAll(async () => {
  await Promise.all([...pglites, ...pgAdmins].map((db) => db.close()));
  await pgDatabases?.drop();
}, 60_000);

const EMPTY = 'truncate events; drop table if exists relay_checkpoints';

const worlds: Record<'pglite' | 'postgres', () => Promise<World>> = {
  async pglite() {
    for (const db of pglites) await db.exec(EMPTY);
    const store = await createPgliteEventStore({ databases: pglites, ownsDatabases: false });
    return { kind: 'pglite', store, db: pglites[0]!, close: () => store.close() };
  },
  async postgres() {
    for (const admin of pgAdmins) await admin.exec(EMPTY);
    const store = await createPostgresEventStore({ urls: pgDatabases.urls, poolSize: 3 });
    const db = createPostgresDatabase({ connectionString: pgDatabases.urls[0]!, max: 3 });
    return {
      kind: 'postgres',
      store,
      db,
      close: async () => {
        await store.close();
        await db.close();
      },
    };
  },
};

async function createTestBus(): Promise<JetStreamBus> {
  return createJetStreamBus({
    servers: SERVERS,
    prefix: `relay_${randomBytes(5).toString('hex')}`,
    stream: { maxAgeMs: 10 * 60_000, maxBytes: 16 * 1024 * 1024 },
    retry: { initialMs: 20, maxMs: 100 },
    fetchExpiresMs: 2_000,
  });
}

/** Appends `perStream` single-event appends to each of `streams` streams, the streams concurrently. */
async function appendMany(store: EventStore, streams: number, perStream: number, pauseMs = 0): Promise<number> {
  // Streams spread evenly over the shards (random ids alone leave a shard empty now and then,
  // and the tests check each shard's publisher).
  const ids: string[] = [];
  while (ids.length < streams) {
    const id = `conversation-${randomUUID()}`;
    if (store.shardOf(id) === ids.length % store.shardCount) ids.push(id);
  }
  await Promise.all(
    ids.map(async (streamId) => {
      for (let version = 0; version < perStream; version++) {
        await store.append(streamId, [{ event_id: randomUUID(), type: 'MessageSent', data: { n: version } }], { expectedVersion: version });
        if (pauseMs > 0) await delay(pauseMs);
      }
    }),
  );
  return streams * perStream;
}

/** Every event of the store's log, by id. */
async function storedLog(store: EventStore): Promise<Map<string, StoredEvent>> {
  const all = new Map<string, StoredEvent>();
  for (let shard = 0; shard < store.shardCount; shard++) {
    for (const event of await store.readLog(shard, { after: 0, maxCount: 100_000 })) all.set(event.event_id, event);
  }
  return all;
}

/** The consumer got every event of the store exactly once after dedupe by id, with no hole in any shard's positions. */
async function expectEverythingOnce(store: EventStore, member: Member): Promise<void> {
  const log = await storedLog(store);
  await eventually(() => expect(new Set(member.handled.map((e) => e.event_id)).size).toBe(log.size), 15_000);
  const byId = new Map(member.handled.map((e) => [e.event_id, e]));
  expect([...byId.keys()].sort()).toEqual([...log.keys()].sort());
  for (let shard = 0; shard < store.shardCount; shard++) {
    const positions = [...byId.values()].filter((e) => e.shard === shard).map((e) => e.position).sort((a, b) => a - b);
    expect(positions).toEqual(Array.from({ length: await store.headPosition(shard) }, (_, i) => i + 1));
  }
  for (const [id, event] of byId) expect(event).toEqual(log.get(id)); // every field as stored
}

function relayOf(world: World, bus: EventBus, extra: Partial<RelayDeps> = {}): Relay {
  return createRelay({ store: world.store, bus, db: world.db, pollIntervalMs: 20, leaseMs: 1_000, batchSize: 50, ...extra });
}

async function withWorld(kind: 'pglite' | 'postgres', fn: (world: World, bus: JetStreamBus) => Promise<void>): Promise<void> {
  const world = await worlds[kind]();
  const bus = await createTestBus();
  try {
    await fn(world, bus);
  } finally {
    await bus.deleteStream().catch(() => false);
    await bus.close();
    await world.close();
  }
}

for (const kind of ['pglite', 'postgres'] as const) {
  describe(`relay: ${kind} store → JetStream`, () => {
    it('relays every appended event exactly once, across a relay stopped and another started mid-stream', async () => {
      await withWorld(kind, async (world, bus) => {
        const member = startMember(bus, 'check', { batchSize: 64 });
        const first = relayOf(world, bus);
        await first.start();
        const writing = appendMany(world.store, 6, 25, 2);
        await eventually(() => expect(member.handled.length).toBeGreaterThanOrEqual(30));
        await first.stop();
        expect(first.stats().some((s) => s.published > 0)).toBe(true);
        const second = relayOf(world, bus);
        await second.start();
        await writing;
        await expectEverythingOnce(world.store, member);
        await second.stop();
        await member.stop();
        const heads = await Promise.all([0, 1].map((shard) => world.store.headPosition(shard)));
        expect((await second.checkpoints()).map((c) => c.position)).toEqual(heads);
        expect((await second.checkpoints()).every((c) => c.owner === null)).toBe(true); // leases given back
      });
    });

    it('two relays at once: one publisher per shard, and a clean stop hands the shards over', async () => {
      await withWorld(kind, async (world, bus) => {
        const member = startMember(bus, 'check', { batchSize: 64 });
        const a = relayOf(world, bus);
        const b = relayOf(world, bus);
        await Promise.all([a.start(), b.start()]);
        await appendMany(world.store, 6, 10);
        await expectEverythingOnce(world.store, member);
        for (const shard of [0, 1]) {
          const publishers = [a, b].filter((relay) => relay.stats()[shard]!.published > 0);
          expect(publishers).toHaveLength(1);
          expect([a, b].filter((relay) => relay.stats()[shard]!.leader)).toHaveLength(1);
        }
        // the relay leading shard 0 stops: the other takes every shard and nothing is lost
        const [leader, other] = a.stats()[0]!.leader ? [a, b] : [b, a];
        await leader.stop();
        await appendMany(world.store, 4, 10);
        await expectEverythingOnce(world.store, member);
        expect(other.stats().every((s) => s.leader)).toBe(true);
        await other.stop();
        await member.stop();
      });
    });
  });
}

describe('relay failures (pglite store → JetStream)', () => {
  it('a crash between publish and checkpoint re-publishes the batch; JetStream drops the duplicates', async () => {
    await withWorld('pglite', async (world, bus) => {
      let crashes = 0;
      const crashingBus: EventBus = {
        ...bus,
        async publish(events) {
          await bus.publish(events);
          if (crashes === 0) {
            crashes++;
            throw new Error('crashed after the publish, before the checkpoint');
          }
        },
      };
      const member = startMember(bus, 'check');
      const total = await appendMany(world.store, 2, 5);
      const relay = relayOf(world, crashingBus, { retry: { initialMs: 10, maxMs: 50 } });
      await relay.start();
      await expectEverythingOnce(world.store, member);
      // the consumer may have everything before the relay retried: wait for the checkpoints
      const heads = await Promise.all([0, 1].map((shard) => world.store.headPosition(shard)));
      await eventually(async () => expect((await relay.checkpoints()).map((c) => c.position)).toEqual(heads));
      await relay.stop();
      await member.stop();
      expect(crashes).toBe(1);
      expect(bus.stats().duplicates).toBeGreaterThan(0);
      expect(bus.stats().published).toBe(total);
      expect(member.handled).toHaveLength(total); // deduplicated by the bus, not only by the test
    });
  });

  it('a leader whose lease was taken gives the shard up at its next checkpoint and never writes over the new owner', async () => {
    await withWorld('pglite', async (world, bus) => {
      const member = startMember(bus, 'check');
      const relay = relayOf(world, bus, { batchSize: 5, leaseMs: 60_000 });
      await relay.start();
      await appendMany(world.store, 2, 5);
      await expectEverythingOnce(world.store, member);
      await eventually(() => expect(relay.stats().every((s) => s.leader)).toBe(true));
      // another relay took both shards (as after this one stalled past its lease)
      await world.db.query(`update relay_checkpoints set owner = 'usurper', lease_until = now() + interval '60 seconds' where relay = 'events'`);
      const before = relay.stats().map((s) => s.published);

      await appendMany(world.store, 2, 30); // 30 events per shard: six batches each

      await eventually(() => expect(relay.stats().every((s) => !s.leader)).toBe(true));
      // its checkpoint write of the batch before is refused; that batch and the one published
      // meanwhile are all it sends before giving up
      relay.stats().forEach((s, shard) => {
        expect(s.published - before[shard]!).toBeLessThanOrEqual(10);
      });
      const rows = await relay.checkpoints();
      expect(rows.map((r) => r.owner)).toEqual(['usurper', 'usurper']);
      await relay.stop();
      await member.stop();
    });
  });

  it('a leader stalled past its lease (a SIGSTOP) does not publish as the leader once it resumes', async () => {
    await withWorld('pglite', async (world, bus) => {
      const member = startMember(bus, 'check');
      // The stall: the relay's next log read returns only when released, as if the process had
      // been stopped between reading a batch and publishing it.
      let stall: Promise<void> | null = null;
      let reached = 0;
      let release = () => {};
      const stalledStore: EventStore = {
        ...world.store,
        readLog: async (shard, options) => {
          const read = await world.store.readLog(shard, options);
          if (stall !== null && read.length > 0) {
            reached++;
            await stall;
          }
          return read;
        },
      };
      const a = createRelay({ store: stalledStore, bus, db: world.db, pollIntervalMs: 20, leaseMs: 600, batchSize: 50 });
      await a.start();
      await appendMany(world.store, 2, 3);
      await expectEverythingOnce(world.store, member);
      await eventually(() => expect(a.stats().every((s) => s.leader)).toBe(true));

      stall = new Promise<void>((resolve) => (release = resolve));
      await appendMany(world.store, 2, 3); // a holds a read batch of each shard, not yet published
      await eventually(() => expect(reached).toBe(2));
      const before = a.stats().map((s) => s.published);
      await delay(1_000); // longer than the lease: another relay may take the shards
      const b = relayOf(world, bus, { leaseMs: 600 });
      await b.start();
      await expectEverythingOnce(world.store, member);
      await eventually(() => expect(b.stats().every((s) => s.leader)).toBe(true));

      release(); // the stalled relay runs again
      await eventually(() => expect(a.stats().every((s) => !s.leader)).toBe(true));
      expect(a.stats().map((s) => s.published)).toEqual(before); // it published nothing more
      expect((await b.checkpoints()).map((c) => c.owner)).toEqual([b.id, b.id]);
      await a.stop();
      await b.stop();
      await member.stop();
    });
  });

  it("a crashed leader's lease frees itself: another relay takes the shard once it runs out", async () => {
    await withWorld('pglite', async (world, bus) => {
      const member = startMember(bus, 'check');
      const relay = relayOf(world, bus);
      await relay.ensureSchema();
      // a relay process died holding both shards, its leases good for 1.5 s more
      await world.db.query(
        `update relay_checkpoints set owner = 'dead-relay', lease_until = now() + interval '1500 milliseconds' where relay = 'events'`,
      );
      await appendMany(world.store, 2, 5);
      const started = Date.now();
      await relay.start();
      await delay(500);
      expect(member.handled).toHaveLength(0); // the dead relay's lease still holds
      await expectEverythingOnce(world.store, member);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
      await relay.stop();
      await member.stop();
    });
  });
});

describe('relay: PostgreSQL connections terminated while it runs', () => {
  it('carries on through terminated connections and relays every event once, with no hole', async () => {
    const world = await worlds.postgres();
    const bus = createMemoryBus();
    try {
      const member = startMember(bus, 'check');
      const relay = relayOf(world, bus, { retry: { initialMs: 10, maxMs: 100 } });
      await relay.start();
      const terminator = terminateBackendsRepeatedly(pgDatabases.names, { everyMs: 100, rounds: 10 });
      const ids: string[] = [];
      while (ids.length < 6) {
        const id = `conversation-${randomUUID()}`;
        if (world.store.shardOf(id) === ids.length % 2) ids.push(id);
      }
      await Promise.all(
        ids.map(async (streamId) => {
          for (let version = 0; version < 8; version++) {
            const events = [{ event_id: randomUUID(), type: 'MessageSent', data: { n: version } }];
            for (;;) {
              try {
                await world.store.append(streamId, events, { expectedVersion: version });
                break;
              } catch (error) {
                if (!isOutage(error)) throw error;
                await delay(10);
              }
            }
            await delay(15);
          }
        }),
      );
      expect(await terminator.done).toBeGreaterThan(0);
      await expectEverythingOnce(world.store, member);
      expect(relay.stats().some((s) => s.failures > 0)).toBe(true); // the fault reached the relay
      await relay.stop();
      await member.stop();
    } finally {
      await bus.close();
      await world.close();
    }
  });
});

describe('relay: embedded (pglite store → memory bus)', () => {
  it('relays every event, woken by the append itself', async () => {
    const world = await worlds.pglite();
    const bus = createMemoryBus();
    try {
      const member = startMember(bus, 'check');
      // polling far slower than the test: only the in-process wake-up can make it in time
      const relay = relayOf(world, bus, { pollIntervalMs: 60_000, leaseMs: 60_000 });
      await relay.start();
      await delay(100);
      await appendMany(world.store, 3, 5);
      await expectEverythingOnce(world.store, member);
      await relay.stop();
      await member.stop();
    } finally {
      await bus.close();
      await world.close();
    }
  });
});
