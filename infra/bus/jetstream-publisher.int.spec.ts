import { randomBytes } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJetStreamPublisher } from './jetstream-publisher.js';

// Against the machine's nats-server (2.9.10): each test makes its own stream and deletes it.
const SERVERS = process.env.TEST_NATS_URL ?? '127.0.0.1:4222';
const bytes = (text: string) => new TextEncoder().encode(text);

describe('JetStream publisher (one reply subscription for every PubAck)', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];

  async function newStream(extra: { max_msgs?: number; discard?: 'new' | 'old' } = {}) {
    const name = `pub_${randomBytes(5).toString('hex')}`;
    await jsm.streams.add({ name, subjects: [`${name}.>`], duplicate_window: 60_000_000_000, ...extra });
    streams.push(name);
    return name;
  }

  /** A subject something listens on but never answers: a publish there waits for a PubAck that never comes. */
  async function silentSubject() {
    const subject = `silent_${randomBytes(4).toString('hex')}`;
    const subscription = nc.subscribe(subject, { callback: () => {} });
    await nc.flush();
    return { subject, stop: () => subscription.unsubscribe() };
  }

  beforeAll(async () => {
    nc = await connect({ servers: SERVERS, noAsyncTraces: true });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    for (const name of streams) await jsm.streams.delete(name).catch(() => false);
    await nc.close();
  });

  it('stores 1,000 pipelined publishes in call order, each acknowledged with its own sequence', async () => {
    const stream = await newStream();
    const publisher = createJetStreamPublisher(nc, 5_000);
    const acks = await Promise.all(Array.from({ length: 1_000 }, (_, i) => publisher.publish(`${stream}.a`, bytes(`m${i}`), `id-${i}`)));
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
    expect(acks.every((a) => a.stream === stream && !a.duplicate)).toBe(true);
    for (const seq of [1, 500, 1_000]) {
      const stored = await jsm.streams.getMessage(stream, { seq });
      expect(new TextDecoder().decode(stored!.data)).toBe(`m${seq - 1}`);
      expect(stored!.header.get('Nats-Msg-Id')).toBe(`id-${seq - 1}`);
    }
    publisher.close();
  });

  it('reports a repeated message id as a duplicate of the stored one, which is kept once', async () => {
    const stream = await newStream();
    const publisher = createJetStreamPublisher(nc, 5_000);
    const first = await publisher.publish(`${stream}.a`, bytes('one'), 'same-id');
    const again = await publisher.publish(`${stream}.a`, bytes('one again'), 'same-id');
    expect(first).toEqual({ stream, seq: 1, duplicate: false });
    expect(again).toEqual({ stream, seq: 1, duplicate: true });
    expect((await jsm.streams.info(stream)).state.messages).toBe(1);
    publisher.close();
  });

  it("rejects with the server's error when the stream refuses a message, and goes on with the next", async () => {
    const stream = await newStream({ max_msgs: 1, discard: 'new' });
    const publisher = createJetStreamPublisher(nc, 5_000);
    const results = await Promise.allSettled([
      publisher.publish(`${stream}.a`, bytes('fits'), 'a'),
      publisher.publish(`${stream}.a`, bytes('does not fit'), 'b'),
    ]);
    expect(results[0]).toMatchObject({ status: 'fulfilled', value: { seq: 1 } });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/JetStream publish failed: .*maximum messages/i) } });
    publisher.close();
  });

  it('rejects at once when no stream stores the subject (no responders)', async () => {
    const publisher = createJetStreamPublisher(nc, 5_000);
    const started = Date.now();
    await expect(publisher.publish(`nowhere_${randomBytes(4).toString('hex')}.a`, bytes('x'), 'x')).rejects.toThrow(/no responders/);
    expect(Date.now() - started).toBeLessThan(4_000); // not the 5 s timeout
    publisher.close();
  });

  it('rejects after the timeout when something takes the subject but never acknowledges', async () => {
    const silent = await silentSubject();
    const publisher = createJetStreamPublisher(nc, 100);
    await expect(publisher.publish(silent.subject, bytes('x'), 'x')).rejects.toThrow(/no PubAck within 100 ms/);
    silent.stop();
    publisher.close();
  });

  it('close() rejects what is still waiting, and later publishes', async () => {
    const silent = await silentSubject();
    const publisher = createJetStreamPublisher(nc, 60_000);
    const waiting = publisher.publish(silent.subject, bytes('x'), 'x');
    publisher.close();
    await expect(waiting).rejects.toThrow(/closed before the PubAck/);
    await expect(publisher.publish(silent.subject, bytes('y'), 'y')).rejects.toThrow(/closed/);
    silent.stop();
  });
});
