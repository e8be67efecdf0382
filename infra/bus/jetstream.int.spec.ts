import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delay, eventually, eventBusContract, shardEvents, startMember } from './contract.js';
import { ensureConsumer, ensureStream } from './jetstream-setup.js';
import { createJetStreamBus, type JetStreamBusOptions } from './jetstream.js';
import { busNames } from './subjects.js';

// The machine's nats-server (2.9.10) is shared with other runs: every bus gets its own prefix
// (so its own stream) and deletes its stream afterwards.
const SERVERS = process.env.TEST_NATS_URL ?? '127.0.0.1:4222';
const newPrefix = () => `t_${randomBytes(5).toString('hex')}`;

const testOptions = (prefix: string): JetStreamBusOptions => ({
  servers: SERVERS,
  prefix,
  stream: { maxAgeMs: 10 * 60_000, maxBytes: 16 * 1024 * 1024 },
  retry: { initialMs: 20, maxMs: 100 },
  fetchExpiresMs: 2_000,
});

async function createTestBus(prefix = newPrefix(), extra: Partial<JetStreamBusOptions> = {}) {
  return createJetStreamBus({ ...testOptions(prefix), ...extra });
}

eventBusContract('jetstream', {
  async create() {
    const bus = await createTestBus();
    return {
      bus,
      dispose: async () => {
        const admin = await connect({ servers: SERVERS });
        try {
          await (await jetstreamManager(admin)).streams.delete(bus.names.stream).catch(() => false);
        } finally {
          await admin.close();
        }
      },
    };
  },
});

describe('jetstream bus on nats-server 2.9', () => {
  let admin: NatsConnection;
  const streams: string[] = [];

  beforeAll(async () => {
    admin = await connect({ servers: SERVERS });
  });
  afterAll(async () => {
    const jsm = await jetstreamManager(admin);
    for (const stream of streams) await jsm.streams.delete(stream).catch(() => false);
    await admin.close();
  });

  it('terminates and counts a payload that is not an event, and goes on', async () => {
    const bus = await createTestBus();
    streams.push(bus.names.stream);
    try {
      const js = (await jetstreamManager(admin)).jetstream();
      const [good] = shardEvents(1, 1);
      await js.publish(`${bus.names.prefix}.events.0.x`, 'not json');
      await js.publish(`${bus.names.prefix}.events.0.x`, JSON.stringify({ event_id: 'e', type: 'T' }));
      await js.publish(`${bus.names.prefix}.events.1.x`, JSON.stringify(good)); // subject says shard 1, event says 0
      await bus.publish([good!]);
      const member = startMember(bus, 'g');
      await eventually(() => expect(member.handled).toHaveLength(1));
      await delay(100);
      await member.stop();
      expect(bus.stats()).toMatchObject({ invalid: 3, acked: 1 });
      const info = await (await jetstreamManager(admin)).consumers.info(bus.names.stream, 'g');
      expect(info.num_ack_pending).toBe(0);
      expect(info.num_pending).toBe(0);
    } finally {
      await bus.close();
    }
  });

  it('splits a group over two connections (two processes), each event handled once', async () => {
    const prefix = newPrefix();
    const one = await createTestBus(prefix);
    const two = await createTestBus(prefix);
    streams.push(one.names.stream);
    try {
      const events = shardEvents(2, 50);
      const slow = () => delay(5);
      const a = startMember(one, 'workers', { batchSize: 10, handle: slow });
      const b = startMember(two, 'workers', { batchSize: 10, handle: slow });
      await one.publish(events.slice(0, 50));
      await two.publish(events.slice(50));
      await eventually(() => expect(a.handled.length + b.handled.length).toBe(100));
      await delay(200);
      await Promise.all([a.stop(), b.stop()]);
      const all = [...a.handled, ...b.handled].map((e) => e.event_id);
      expect(new Set(all).size).toBe(100);
      expect(all).toHaveLength(100);
      expect(a.handled.length).toBeGreaterThan(0);
      expect(b.handled.length).toBeGreaterThan(0);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('a stopping member hands back what it fetched at once, not after ack_wait', async () => {
    const bus = await createTestBus(newPrefix(), { consumer: { ackWaitMs: 60_000 } });
    streams.push(bus.names.stream);
    try {
      const events = shardEvents(1, 20);
      await bus.publish(events.slice(0, 5));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      // its pull asks for 20: the first 5 go to the handler, the next 15 arrive while it waits
      const first = startMember(bus, 'handover', { batchSize: 20, handle: () => gate });
      await eventually(() => expect(first.seen).toHaveLength(5));
      await bus.publish(events.slice(5));
      const jsm = await jetstreamManager(admin);
      await eventually(async () => expect((await jsm.consumers.info(bus.names.stream, 'handover')).num_ack_pending).toBe(20));
      const stopping = first.stop();
      release();
      await stopping;
      expect(first.handled).toHaveLength(5);
      const second = startMember(bus, 'handover');
      await eventually(() => expect(second.handled).toHaveLength(15), 5_000); // not 60 s
      await second.stop();
      expect([...first.handled, ...second.handled].map((e) => e.position)).toEqual(events.map((e) => e.position));
    } finally {
      await bus.close();
    }
  });

  it('a member recreates its consumer when it is deleted under it, and goes on', async () => {
    const bus = await createTestBus();
    streams.push(bus.names.stream);
    try {
      const member = startMember(bus, 'phoenix');
      const events = shardEvents(1, 6);
      await bus.publish(events.slice(0, 3));
      await eventually(() => expect(member.handled).toHaveLength(3));
      await (await jetstreamManager(admin)).consumers.delete(bus.names.stream, 'phoenix');
      await bus.publish(events.slice(3));
      // the new durable starts again at the oldest retained event: duplicates, never a loss
      await eventually(() => expect(new Set(member.handled.map((e) => e.event_id)).size).toBe(6));
      await member.stop();
      expect(bus.stats().fetchErrors).toBeGreaterThan(0);
    } finally {
      await bus.close();
    }
  });

  it('set-up is idempotent, updates changed limits, and keeps consumers when re-run', async () => {
    const names = busNames(newPrefix());
    streams.push(names.stream);
    const jsm = await jetstreamManager(admin);
    const created = await ensureStream(jsm, names, { maxAgeMs: 60_000, duplicateWindowMs: 30_000 });
    expect(created.config).toMatchObject({ storage: 'file', subjects: [names.eventsWildcard], duplicate_window: 30_000 * 1e6 });
    await Promise.all([ensureStream(jsm, names, { maxAgeMs: 60_000, duplicateWindowMs: 30_000 }), ensureStream(jsm, names, { maxAgeMs: 60_000, duplicateWindowMs: 30_000 })]);
    const updated = await ensureStream(jsm, names, { maxAgeMs: 120_000, duplicateWindowMs: 30_000 });
    expect(updated.config.max_age).toBe(120_000 * 1e6);
    await ensureConsumer(jsm, names, 'g', { ackWaitMs: 5_000 });
    const changed = await ensureConsumer(jsm, names, 'g', { ackWaitMs: 7_000 });
    expect(changed.config.ack_wait).toBe(7_000 * 1e6);
    expect(changed.config.filter_subject).toBe(names.eventsWildcard);
  });

  it('knows the 2.9 limits: the client refuses multi-filter consumers', async () => {
    const names = busNames(newPrefix());
    streams.push(names.stream);
    const jsm = await jetstreamManager(admin);
    await ensureStream(jsm, names);
    expect(admin.info?.version).toMatch(/^2\./);
    await expect(
      jsm.consumers.add(names.stream, { durable_name: 'multi', filter_subjects: [names.shardWildcard(0), names.shardWildcard(1)] }),
    ).rejects.toThrow(/filter_subjects.*requires server 2\.10/);
  });
});
