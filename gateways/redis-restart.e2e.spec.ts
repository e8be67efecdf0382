import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateServer } from '../infra/testing/private-servers.js';
import { createApiStack, type ApiStack, type Registered } from './api/testing/api-stack.js';
import { sdkClients, until } from './testing/sdk-clients.js';

/**
 * The server (one process, every role) with presence and typing in a Redis of its own that keeps
 * nothing on disk, restarted while clients chat: every connection entry is gone after it. The
 * gateway registers its connections again at once and tells them to sync (deliveries found no
 * node for them meanwhile); presence calls fail softly during the outage; pub/sub resumes. The
 * clients end with every message once, in order, with no reconnect.
 */
describe('the server while its Redis restarts', () => {
  let redis: PrivateServer;
  let stack: ApiStack;
  let baseUrl: string;
  const sdk = sdkClients(() => baseUrl);

  beforeAll(async () => {
    redis = await startPrivateRedis();
    stack = await createApiStack('pglite', { env: { REDIS_URL: redis.url, REDIS_PREFIX: `rr_${randomBytes(3).toString('hex')}:` } });
    baseUrl = await stack.listenAll();
  }, 180_000);
  afterAll(async () => {
    await sdk.closeAll();
    await stack?.close();
    await redis?.close();
  }, 60_000);

  const connect = (user: Registered) => sdk.connect(user);

  /** Whether deliveries to the user find a node (false while Redis cannot be asked). */
  const routed = async (userId: string) =>
    stack.presence.nodesOf([userId]).then(
      (nodes) => (nodes.get(userId) ?? []).length > 0,
      () => false,
    );

  it('registers the connections again at once, tells them to sync, and nothing is lost or doubled', async () => {
    const alice = await stack.client.register('rr_alice');
    const bob = await stack.client.register('rr_bob');
    const conversationId: string = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    const a = connect(alice);
    const b = connect(bob);
    await Promise.all([a.c.connect(), b.c.connect()]);
    a.c.track(conversationId);
    b.c.track(conversationId);
    await a.c.send(conversationId, 'before');
    await until(() => b.contents().length === 1, 'the first message');
    expect(await routed(bob.user_id)).toBe(true);

    await redis.stop();

    const unready = await stack.client.anonymous.get('/readyz');
    expect(unready.status).toBe(503);
    expect(unready.body.dependencies).toContainEqual(expect.objectContaining({ name: 'redis', status: 'down' }));
    // Sends go on (the store is up); their live delivery has nowhere to go until Redis is back.
    await a.c.send(conversationId, 'during');
    // Typing during the outage fails softly: a retryable refusal, the connection stays.
    await expect(a.c.typing(conversationId, true)).rejects.toMatchObject({ reason: 'dependency_unavailable', retryable: true });

    await redis.start(); // empty: every presence entry is gone

    await until(async () => (await routed(bob.user_id)) && (await routed(alice.user_id)), 'the connections registered again');
    await until(() => b.c.stats().syncRequired > 0, 'SyncRequired at bob');
    await a.c.send(conversationId, 'after');
    await until(() => b.contents().length >= 3, 'every message at bob');
    expect(b.contents()).toEqual(['before', 'during', 'after']);
    expect(a.c.stats().reconnects).toBe(0);
    expect(b.c.stats().reconnects).toBe(0);
    expect(stack.gateway.stats().syncRequired.presence_reconnected).toBeGreaterThanOrEqual(2);
    // Pub/sub resumed: typing reaches bob again.
    await new Promise((r) => setTimeout(r, 1_100)); // past the typing throttle of the refused signal's second
    await a.c.typing(conversationId, true);
    await until(() => b.typing.includes(true), 'typing after the restart');
    expect((await stack.client.anonymous.get('/readyz')).status).toBe(200);
  });
});
