import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { sdkClients, until } from '../testing/sdk-clients.js';

/**
 * The gateway noticing that its delivery feed stopped (the delivery role dead or stalled, while
 * the gateway goes on acknowledging sends): a message sent through the node does not come back to
 * it (its sender is one of its recipients) within DELIVERY_FEED_DEADLINE_MS, so the node tells its
 * connections to sync from the store, which has every acknowledged message. A member who only
 * listens gets them; when the feed flows again, its late deliveries are dropped by version.
 */
describe('a gateway whose delivery feed stalls', () => {
  let stack: ApiStack;
  let baseUrl: string;
  const sdk = sdkClients(() => baseUrl);

  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { DELIVERY_FEED_DEADLINE_MS: '300' } });
    baseUrl = await stack.listenAll();
  }, 180_000);
  afterAll(async () => {
    await sdk.closeAll();
    await stack?.close();
  }, 60_000);

  // The SDK's own quiet-feed check is set far out: only the server's is under test here.
  const connect = (user: Registered) => sdk.connect(user, { feedDeadlineMs: 600_000 });

  it('tells its connections to sync while the feed is stalled; every message reaches the listener once, in order', async () => {
    const alice = await stack.client.register('ds_alice');
    const bob = await stack.client.register('ds_bob');
    const conversationId: string = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    const a = connect(alice);
    const b = connect(bob);
    await Promise.all([a.c.connect(), b.c.connect()]);
    a.c.track(conversationId);
    b.c.track(conversationId);
    await a.c.send(conversationId, 'live');
    await until(() => b.contents().length === 1, 'the live message');

    await stack.delivery.stop(); // the delivery role stops: sends are still acknowledged
    await a.c.send(conversationId, 'stalled 1');
    await a.c.send(conversationId, 'stalled 2');
    await until(() => b.contents().length === 3, 'the messages, through a sync');
    expect(b.contents()).toEqual(['live', 'stalled 1', 'stalled 2']);
    expect(stack.gateway.stats()).toMatchObject({ feedStalled: true });
    expect(b.c.stats().syncRequired).toBeGreaterThanOrEqual(1);

    stack.delivery.start(); // flowing again: its backlog arrives and is dropped by version
    await a.c.send(conversationId, 'flowing');
    await until(() => b.contents().length === 4, 'the next live message');
    await until(() => !stack.gateway.stats().feedStalled, 'the feed to count as flowing');
    expect(b.contents()).toEqual(['live', 'stalled 1', 'stalled 2', 'flowing']);
    expect(b.c.stats().reconnects).toBe(0);
  });
});
