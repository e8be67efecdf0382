import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConversationCommands } from '../../commands/conversations.js';
import { createApiStack, type ApiStack } from '../../gateways/api/testing/api-stack.js';
import { createWsGateway, type WsGateway } from '../../gateways/gateway/gateway.js';
import { ContentType } from '../../gateways/protocol/index.js';
import { connectClient, openSocket, type TestClient } from '../../gateways/gateway/testing/client.js';
import { createConversationQueries } from '../../projections/conversations/queries.js';
import { createOtelMetrics } from './otel.js';
import { createPrometheusMeter, type PrometheusMeter } from './prometheus.js';

/**
 * The metrics as the gateway feeds them: the embedded stack (PGlite in memory, in-process bus,
 * relay and delivery worker) with a second gateway node that has metrics, two real clients.
 */
describe('telemetry through the WebSocket gateway (embedded stack)', () => {
  let stack: ApiStack;
  let gateway: WsGateway;
  let meter: PrometheusMeter;
  let url: string;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    stack = await createApiStack('pglite');
    meter = createPrometheusMeter();
    const primary = stack.databases[0]!;
    gateway = createWsGateway({
      nodeId: `metrics-node-${process.pid}`,
      tokens: stack.access,
      commands: createConversationCommands({ store: stack.store, users: stack.users, clock: () => new Date() }),
      store: stack.store,
      queries: createConversationQueries(primary),
      presence: stack.presence,
      bus: stack.bus,
      logger: pino({ level: 'silent' }),
      metrics: createOtelMetrics({ meter: meter.meterProvider.getMeter('test') }),
    });
    url = `ws://127.0.0.1:${await gateway.listen('127.0.0.1', 0)}/ws`;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await gateway?.close();
    await meter?.shutdown();
    await stack?.close();
  });

  const sample = (text: string, name: string, labels = '') =>
    Number(new RegExp(`^${name}\\{${labels}[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);

  it('counts connections and frames, and measures the delivery latency of a live message', async () => {
    const alice = await stack.client.register('m_alice');
    const bob = await stack.client.register('m_bob');
    const created = await stack.client.as(alice).post('/api/v1/conversations', { participant_id: bob.user_id });
    expect([200, 201]).toContain(created.status);
    const conversationId: string = created.body.conversation_id;

    const a = await connectClient(url, { token: alice.token });
    const b = await connectClient(url, { token: bob.token });
    clients.push(a, b);
    const before = await meter.render();
    expect(sample(before, 'chat_ws_connections')).toBe(2);
    expect(sample(before, 'chat_ws_messages_in_total', 'frame="hello"')).toBe(2);
    expect(sample(before, 'chat_ws_messages_out_total', 'frame="welcome"')).toBe(2);

    const ack = await a.request({ case: 'sendMessage', value: { conversationId, clientMessageId: 'm-1', content: 'hi', contentType: ContentType.TEXT } });
    expect(ack.body.case).toBe('sendAck');
    await b.waitFor('event', (e) => e.payload.case === 'messageSent');
    await a.waitFor('event', (e) => e.payload.case === 'messageSent');

    const after = await meter.render();
    expect(sample(after, 'chat_ws_messages_in_total', 'frame="sendMessage"')).toBe(1);
    expect(sample(after, 'chat_ws_messages_out_total', 'frame="sendAck"')).toBe(1);
    expect(sample(after, 'chat_ws_messages_out_total', 'frame="event"')).toBeGreaterThanOrEqual(2);
    // one live MessageSent to each of the two connections, well under the 10 s top bucket
    expect(sample(after, 'chat_delivery_latency_ms_count')).toBe(2);
    expect(sample(after, 'chat_delivery_latency_ms_bucket', '[^}]*le="10000"')).toBe(2);
    expect(sample(after, 'chat_delivery_latency_ms_sum')).toBeGreaterThanOrEqual(0);

    b.close();
    await a.waitUntil(() => (gateway.stats().connections === 1 ? true : undefined), 5000, 'bob gone');
    expect(sample(await meter.render(), 'chat_ws_connections')).toBe(1);
  });

  it('counts a frame that does not decode as invalid, and the Goodbye before the close', async () => {
    const before = await meter.render();
    const invalid = sample(before, 'chat_ws_messages_in_total', 'frame="invalid"') || 0;
    const goodbyes = sample(before, 'chat_ws_messages_out_total', 'frame="goodbye"') || 0;
    const socket = await openSocket(url);
    clients.push(socket);
    socket.sendRaw('not a binary frame');
    await socket.waitClosed();
    const after = await meter.render();
    expect(sample(after, 'chat_ws_messages_in_total', 'frame="invalid"')).toBe(invalid + 1);
    expect(sample(after, 'chat_ws_messages_out_total', 'frame="goodbye"')).toBe(goodbyes + 1);
    expect(sample(after, 'chat_ws_messages_out_total', 'frame="error"')).toBeGreaterThanOrEqual(1);
  });
});
