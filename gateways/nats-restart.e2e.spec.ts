import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PushNotification, PushProvider } from './ports/push-provider.js';
import { startPrivateNats, type PrivateServer } from '../infra/testing/private-servers.js';
import { createApiStack, type ApiStack, type Registered } from './api/testing/api-stack.js';
import { sdkClients, until } from './testing/sdk-clients.js';

/**
 * The server (one process, every role) on a NATS server of its own, restarted while clients chat
 * (JetStream keeps its streams in its store directory). The relay's publishes, the delivery
 * worker's pulls, the push queue and the gateway's node subscription resume by themselves; node
 * messages sent while the gateway was cut off are lost, so the gateway tells its connections to
 * sync. The clients end with every message once, in order, with no reconnect, and an offline
 * member still gets a notification.
 */
describe('the server while its NATS restarts', () => {
  let nats: PrivateServer;
  let stack: ApiStack;
  let baseUrl: string;
  const sdk = sdkClients(() => baseUrl);
  const logs: Record<string, unknown>[] = [];
  const pushed: { token: string; notification: PushNotification }[] = [];
  const provider: PushProvider = {
    name: 'recording',
    async send(targets, notification) {
      for (const t of targets) pushed.push({ token: t.token, notification });
      return targets.map((t) => ({ token: t.token, outcome: 'sent' as const }));
    },
    async close() {},
  };

  beforeAll(async () => {
    nats = await startPrivateNats();
    stack = await createApiStack('pglite', {
      env: { NATS_URL: nats.url, NATS_PREFIX: `nr_${randomBytes(3).toString('hex')}`, PUSH_BATCH_QUIET_MS: '0', PUSH_BATCH_MAX_DELAY_MS: '0', PUSH_MIN_INTERVAL_MS: '0' },
      push: { provider },
      logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) }),
    });
    baseUrl = await stack.listenAll();
  }, 180_000);
  afterAll(async () => {
    await sdk.closeAll();
    await stack?.close();
    await nats?.close();
  }, 60_000);

  const connect = (user: Registered) => sdk.connect(user);

  /** Notifications that reached carol's device for her conversation with alice. */
  const notifiedIn = (conversationId: string) => pushed.filter((p) => p.notification.data.conversation_id === conversationId).length;

  it('the bus, the relay, delivery, the push queue and the node subscription resume; the gateway has its clients sync', async () => {
    const alice = await stack.client.register('nr_alice');
    const bob = await stack.client.register('nr_bob');
    const carol = await stack.client.register('nr_carol'); // offline: push notifications
    const withBob: string = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    const withCarol: string = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: carol.user_id })).body.conversation_id;
    expect((await stack.client.as(carol).post('/api/v1/devices', { platform: 'android', token: `carol-device-${randomBytes(8).toString('hex')}` })).status).toBe(201);
    const a = connect(alice);
    const b = connect(bob);
    await Promise.all([a.c.connect(), b.c.connect()]);
    a.c.track(withBob);
    b.c.track(withBob);
    await a.c.send(withBob, 'before');
    await a.c.send(withCarol, 'carol before');
    await until(() => b.contents().length === 1, 'the first message');
    await until(() => notifiedIn(withCarol) === 1, "carol's first notification");

    await nats.stop();

    const unready = await stack.client.anonymous.get('/readyz');
    expect(unready.status).toBe(503);
    expect(unready.body.dependencies).toContainEqual(expect.objectContaining({ name: 'nats', status: 'down' }));
    await a.c.send(withBob, 'during'); // stored; the relay publishes it once NATS is back

    await nats.start();

    await until(() => b.c.stats().syncRequired > 0, 'SyncRequired at bob');
    await a.c.send(withBob, 'after');
    await a.c.send(withCarol, 'carol after');
    await until(() => b.contents().length >= 3, 'every message at bob');
    expect(b.contents()).toEqual(['before', 'during', 'after']);
    await until(() => notifiedIn(withCarol) === 2, "carol's notification after the restart");
    expect(a.c.stats().reconnects).toBe(0);
    expect(b.c.stats().reconnects).toBe(0);
    expect(stack.gateway.stats().syncRequired.bus_reconnected).toBeGreaterThanOrEqual(2);
    expect(stack.relay.stats().every((s) => s.leader)).toBe(true);
    await until(async () => (await stack.client.anonymous.get('/readyz')).status === 200, 'readiness');
    // The outage is logged once by the bus's health, not as an error of each part that met it
    // (the relay's publish whose PubAck was lost with the server used to log an error).
    expect(logs.filter((l) => typeof l.level === 'number' && l.level >= 50).map((l) => l.msg)).toEqual([]);
  });
});
