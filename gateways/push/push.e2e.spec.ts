import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFcmPushProvider } from '../../infra/push/fcm.js';
import { startFcmStandIn, throwAwayServiceAccount, type FcmStandIn, type RecordedSend } from '../../infra/push/testing/fcm-stand-in.js';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { TEST_NATS_URL } from '../testing/shared-services.js';
import { connectClient } from '../gateway/testing/client.js';
import { createJetStreamPushQueue } from '../../infra/push-queue/jetstream.js';
import { createJetStreamBus } from '../../infra/bus/jetstream.js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pushQueueNames } from '../../infra/push-queue/names.js';

/**
 * Push notifications through the whole stack: REST sends → store → relay → bus → delivery worker (plans the jobs) →
 * push queue → sender → the real FCM adapter (firebase-admin) → a local FCM stand-in.
 * Runs embedded (PGlite, in-process bus and queue) and on PostgreSQL with NATS JetStream
 * (events stream and the push work queue).
 */

async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const variants = [
  { name: 'embedded (PGlite, in-process queue)', adapter: 'pglite' as const, nats: false },
  { name: 'PostgreSQL + JetStream work queue', adapter: 'postgres' as const, nats: true },
];

describe.each(variants)('push notifications, $name', ({ adapter, nats }) => {
  let standIn: FcmStandIn;
  let stack: ApiStack;
  let wsUrl: string;
  const natsPrefix = `push_e2e_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    standIn = await startFcmStandIn();
    const provider = createFcmPushProvider({ serviceAccount: throwAwayServiceAccount('chat-push-test'), httpAgent: standIn.agent });
    stack = await createApiStack(adapter, { env: nats ? { NATS_URL: TEST_NATS_URL, NATS_PREFIX: natsPrefix } : {}, push: { provider } });
    const base = await stack.listenAll();
    const res = await fetch(`${base}/api/v1/realtime`, { headers: { authorization: `Bearer ${(await stack.client.register('probe')).token}` } });
    wsUrl = ((await res.json()) as { websocket_url: string }).websocket_url;
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
    await standIn?.close();
    if (nats) {
      const queue = await createJetStreamPushQueue({ servers: TEST_NATS_URL, prefix: natsPrefix, logger: { warn() {}, error() {} } });
      await queue.deleteStream().finally(() => queue.close());
      const bus = await createJetStreamBus({ servers: TEST_NATS_URL, prefix: natsPrefix, setup: false });
      await bus.deleteStream().catch(() => false).finally(() => bus.close());
    }
  });

  const sendsTo = (token: string): RecordedSend[] => standIn.sends.filter((s) => s.message.token === token);
  const deliveredTo = (token: string): RecordedSend[] => standIn.delivered().filter((s) => s.message.token === token);

  /** A device of `user`'s: a session of its own (a session holds one push token) that registers an FCM token. */
  async function registerDevice(user: Registered, platform: 'android' | 'ios' | 'web' = 'android') {
    const token = `fcm-${randomUUID()}`;
    const device = await stack.client.login(user);
    const res = await stack.client.as(device).post('/api/v1/devices', { platform, token });
    expect(res.status).toBe(201);
    return token;
  }

  async function direct(a: Registered, b: Registered): Promise<string> {
    const res = await stack.client.as(a).post('/api/v1/conversations', { participant_id: b.user_id });
    expect([200, 201]).toContain(res.status);
    return res.body.conversation_id;
  }

  async function send(user: Registered, conversationId: string, content: string) {
    const res = await stack.client.as(user).post(`/api/v1/conversations/${conversationId}/messages`, { content, content_type: 'text' });
    expect(res.status).toBe(201);
    return res.body;
  }

  /** Push planning (the delivery worker's) and sending, as counted so far. */
  const pushStats = () => ({ planned: stack.delivery.stats(), sender: stack.push.stats().sender });

  /** Waits until the delivery worker has planned `messages` more messages and every job queued since `before` is settled. */
  async function settled(before: ReturnType<typeof pushStats>, messages: number) {
    await waitFor(
      () => {
        const now = pushStats();
        return (
          now.planned.pushMessages - before.planned.pushMessages >= messages &&
          now.sender.jobs - before.sender.jobs >= now.planned.pushJobs - before.planned.pushJobs &&
          stack.push.sender.idle()
        );
      },
      15_000,
      `the push pipeline to settle after ${messages} messages`,
    );
  }

  it('offline bob gets exactly one notification for a burst of 5 messages, within 5 s, with the right title and body; alice gets none', async () => {
    const alice = await stack.client.register('alice');
    const bob = await stack.client.register('bob');
    const aliceToken = await registerDevice(alice);
    const bobAndroid = await registerDevice(bob, 'android');
    const bobIphone = await registerDevice(bob, 'ios');
    const conversation = await direct(alice, bob);
    const before = pushStats();

    const start = Date.now();
    let last: { message_id: string; sequence_number: number } | undefined;
    for (let i = 1; i <= 5; i++) last = await send(alice, conversation, `message ${i}`);

    // Each of bob's devices gets it, within 5 s of the first message.
    const [android] = await waitFor(() => (deliveredTo(bobAndroid).length > 0 ? deliveredTo(bobAndroid) : undefined), 5_000 - (Date.now() - start), 'bob’s notification');
    const [iphone] = await waitFor(() => (deliveredTo(bobIphone).length > 0 ? deliveredTo(bobIphone) : undefined), 5_000 - (Date.now() - start), 'bob’s iPhone notification');
    expect(android!.at - start).toBeLessThan(5_000);
    expect(iphone!.at - start).toBeLessThan(5_000);

    // After the batching window and the rate-limit interval have passed with nothing pending: still one.
    await settled(before, 5);
    expect(deliveredTo(bobAndroid)).toHaveLength(1);
    expect(deliveredTo(bobIphone)).toHaveLength(1);
    expect(sendsTo(aliceToken)).toHaveLength(0); // the sender never gets a push

    expect(android!.message.notification).toEqual({ title: alice.username, body: `5 new messages from ${alice.username}` });
    expect(android!.message.data).toEqual({
      type: 'new_messages',
      count: '5',
      conversation_id: conversation,
      message_id: last!.message_id,
      sequence_number: String(last!.sequence_number),
    });
    expect(android!.message).toMatchObject({ android: { priority: 'high', collapse_key: conversation } });
    expect(iphone!.message).toMatchObject({ apns: { payload: { aps: { sound: 'default', 'thread-id': conversation } } } });
    expect(android!.projectId).toBe('chat-push-test');
    expect(android!.authorization).toBe(`Bearer ${standIn.accessToken}`);
  }, 30_000);

  it('one message: its text as the body', async () => {
    const alice = await stack.client.register('alice');
    const bob = await stack.client.register('bob');
    const bobToken = await registerDevice(bob);
    const conversation = await direct(alice, bob);
    const before = pushStats();
    await send(alice, conversation, 'Lunch   today?\nAt 12:30');
    await settled(before, 1);
    expect(deliveredTo(bobToken).map((s) => s.message.notification)).toEqual([{ title: alice.username, body: 'Lunch today? At 12:30' }]);
  }, 30_000);

  it('online bob (an open WebSocket) gets none', async () => {
    const alice = await stack.client.register('alice');
    const bob = await stack.client.register('bob');
    const bobToken = await registerDevice(bob);
    const conversation = await direct(alice, bob);
    const socket = await connectClient(wsUrl, { token: bob.token });
    try {
      const before = pushStats();
      for (let i = 1; i <= 3; i++) await send(alice, conversation, `while you are here ${i}`);
      await settled(before, 3);
      expect(pushStats().planned.pushOnline - before.planned.pushOnline).toBeGreaterThanOrEqual(3);
      expect(sendsTo(bobToken)).toHaveLength(0);
    } finally {
      socket.close();
    }
  }, 30_000);

  it('groups: the group name as title; a member removed before the message gets none', async () => {
    const alice = await stack.client.register('alice');
    const bob = await stack.client.register('bob');
    const carol = await stack.client.register('carol');
    const bobToken = await registerDevice(bob);
    const carolToken = await registerDevice(carol);
    const group = await stack.client.as(alice).post('/api/v1/groups', { name: 'Climbing', member_ids: [bob.user_id, carol.user_id] });
    expect(group.status).toBe(201);
    const removed = await stack.client.as(alice).delete(`/api/v1/groups/${group.body.group_id}/members/${carol.user_id}`);
    expect(removed.status).toBe(200);
    const before = pushStats();
    await send(alice, group.body.conversation_id, 'Saturday?');
    await settled(before, 1);
    expect(deliveredTo(bobToken).map((s) => s.message.notification)).toEqual([{ title: 'Climbing', body: `${alice.username}: Saturday?` }]);
    expect(sendsTo(carolToken)).toHaveLength(0);
  }, 30_000);

  it('a token FCM reports unregistered (or malformed) is dropped from the device table; the others still get it', async () => {
    const alice = await stack.client.register('alice');
    const bob = await stack.client.register('bob');
    const good = await registerDevice(bob);
    const gone = await registerDevice(bob, 'ios');
    const malformed = await registerDevice(bob, 'web');
    standIn.unregister(gone);
    standIn.malformed(malformed);
    const conversation = await direct(alice, bob);
    const before = pushStats();
    await send(alice, conversation, 'are you there?');
    await settled(before, 1);
    expect(deliveredTo(good)).toHaveLength(1);
    expect(sendsTo(gone).map((s) => s.status)).toEqual([404]);
    expect(sendsTo(malformed).map((s) => s.status)).toEqual([400]);
    const devices = await stack.client.as(bob).get('/api/v1/devices');
    expect(devices.body.devices.map((d: { token: string }) => d.token)).toEqual([good]);
  }, 30_000);

  if (nats) it('queues jobs on a JetStream work-queue stream, which holds nothing once they are sent', async () => {
    expect(stack.push.queue.kind).toBe('jetstream');
    const alice = await stack.client.register('alice');
    const bob = await stack.client.register('bob');
    const bobToken = await registerDevice(bob);
    const before = pushStats();
    await send(alice, await direct(alice, bob), 'via the work queue');
    await settled(before, 1);
    expect(deliveredTo(bobToken)).toHaveLength(1);
    const nc = await connect({ servers: TEST_NATS_URL });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(pushQueueNames(natsPrefix).stream);
      expect(info.config.retention).toBe('workqueue');
      expect(info.state.messages).toBe(0); // acknowledged jobs leave a work queue
    } finally {
      await nc.close();
    }
  }, 30_000);

  it('transient FCM failures (500, 429) are retried with back-off until the device gets it, once', async () => {
    const alice = await stack.client.register('alice');
    const bob = await stack.client.register('bob');
    const bobToken = await registerDevice(bob);
    const conversation = await direct(alice, bob);
    const before = pushStats();
    standIn.failNext(1, 500);
    standIn.failNext(1, 429);
    await send(alice, conversation, 'try again');
    await settled(before, 1);
    expect(sendsTo(bobToken).map((s) => s.status)).toEqual([500, 429, 200]);
    const [first, second, third] = sendsTo(bobToken);
    // exponential: ~500 ms then ~1 s (±20 % jitter)
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(350);
    expect(third!.at - second!.at).toBeGreaterThanOrEqual(750);
    expect(stack.push.stats().sender.retries - before.sender.retries).toBe(2);
  }, 30_000);
});
