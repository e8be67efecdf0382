import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { createChatClient, memoryCursorStore, type ChatClient, type ChatClientOptions, type ReceivedEvent } from './index.js';

/**
 * The SDK against the embedded stack over real sockets (REST on a port, the gateway on its own):
 * discovery, reconnects, retried sends, ordering and gap fill.
 */
describe('chat client SDK (embedded stack)', () => {
  let stack: ApiStack;
  let baseUrl: string;
  const clients: ChatClient[] = [];

  beforeAll(async () => {
    stack = await createApiStack('pglite');
    baseUrl = await stack.listenAll();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.close();
  });

  /** A `ws` WebSocket that remembers its instances, so a test can kill the connection. */
  function trackedSockets() {
    const sockets: WebSocket[] = [];
    class Tracked extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    }
    return { WebSocket: Tracked, kill: () => sockets.at(-1)?.terminate(), count: () => sockets.length };
  }

  function client(user: Registered, extra: Partial<ChatClientOptions> = {}) {
    const c = createChatClient({ baseUrl, token: user.token, deviceId: 'dev-1', WebSocket, reconnect: { minMs: 50, maxMs: 200 }, ...extra } as ChatClientOptions);
    clients.push(c);
    const events: ReceivedEvent[] = [];
    c.on('event', (e) => events.push(e));
    return { c, events, contents: () => events.flatMap((e) => (e.type === 'MessageSent' ? [e.data.content] : [])) };
  }

  async function direct(a: Registered, b: Registered): Promise<string> {
    const res = await stack.client.as(a).post('/api/v1/conversations', { participant_id: b.user_id });
    return res.body.conversation_id;
  }

  async function until(probe: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  const increasing = (events: ReceivedEvent[]) => events.every((e, i) => i === 0 || e.version > events[i - 1]!.version);

  it('two clients chat: message, receipts, typing, presence; login with username and password', async () => {
    const alice = await stack.client.register('sdk_alice');
    const bob = await stack.client.register('sdk_bob');
    const conversationId = await direct(alice, bob);
    const a = client(alice);
    const b = createChatClient({
      baseUrl,
      username: bob.username,
      password: 'correct horse battery',
      deviceId: 'dev-b',
      WebSocket,
      autoAckDelivered: true,
      heartbeatIntervalMs: 100,
    });
    clients.push(b);
    const bobEvents: ReceivedEvent[] = [];
    b.on('event', (e) => bobEvents.push(e));
    const presence: string[] = [];
    a.c.on('presence', (p) => presence.push(`${p.userId}:${p.status}`));
    const typing: boolean[] = [];
    a.c.on('typing', (t) => typing.push(t.isTyping));

    await a.c.connect();
    a.c.track(conversationId, 0);
    const welcome = await b.connect();
    expect(welcome.userId).toBe(bob.user_id);
    b.track(conversationId, 0);
    await until(() => presence.includes(`${bob.user_id}:online`), 5000, 'presence');

    const ack = await a.c.send(conversationId, 'hi bob');
    expect(ack.duplicate).toBe(false);
    await until(() => bobEvents.some((e) => e.version === ack.sequenceNumber), 5000, 'message at bob');
    // bob's SDK acked delivery by itself; read is explicit
    await until(() => a.events.some((e) => e.type === 'Delivered' && e.data.up_to_version >= ack.sequenceNumber), 5000, 'delivered');
    b.markRead(conversationId, ack.sequenceNumber);
    await until(() => a.events.some((e) => e.type === 'Read' && e.data.user_id === bob.user_id), 5000, 'read');

    await b.typing(conversationId, true);
    await b.typing(conversationId, true); // throttled on the client: not sent
    await until(() => typing.includes(true), 5000, 'typing');
    expect(increasing(a.events)).toBe(true);
    expect(a.c.cursor(conversationId)).toBe(a.events.at(-1)!.version);
    expect(await a.c.ping()).toBeGreaterThanOrEqual(0);
    await until(() => b.stats().lastRttMs !== null, 5000, 'heartbeat'); // bob pings every 100 ms by himself
  });

  it('a receiver killed during 100 messages reconnects by itself and ends with all 100 once, in order, then live ones', async () => {
    const alice = await stack.client.register('sdk_sender');
    const bob = await stack.client.register('sdk_sleeper');
    const conversationId = await direct(alice, bob);
    const sockets = trackedSockets();
    const a = client(alice);
    const b = client(bob, { WebSocket: sockets.WebSocket, reconnect: { minMs: 400, maxMs: 800 } });
    const disconnects: number[] = [];
    b.c.on('disconnected', (d) => disconnects.push(d.code));
    await Promise.all([a.c.connect(), b.c.connect()]);
    a.c.track(conversationId, 0);
    b.c.track(conversationId, 0);
    const first = await a.c.send(conversationId, 'before');
    await until(() => b.c.cursor(conversationId) === first.sequenceNumber, 5000, 'first message');

    sockets.kill();
    const sent = await Promise.all(Array.from({ length: 100 }, (_, i) => a.c.send(conversationId, `offline ${i}`)));
    const open = new Promise<void>((resolve) => b.c.on('open', () => resolve()));
    await open;
    const live: Awaited<ReturnType<typeof a.c.send>>[] = [];
    for (let i = 0; i < 5; i++) live.push(await a.c.send(conversationId, `live ${i}`));
    await until(() => b.c.cursor(conversationId) === live.at(-1)!.sequenceNumber, 10_000, 'all messages at bob');

    expect(disconnects).toContain(1006);
    expect(sockets.count()).toBe(2);
    expect(b.c.stats().reconnects).toBe(1);
    const contents = b.contents();
    const bySequence = [...sent].sort((x, y) => x.sequenceNumber - y.sequenceNumber).map((s) => s.sequenceNumber);
    expect(contents).toHaveLength(106);
    expect(new Set(contents).size).toBe(106);
    expect(contents.slice(1, 101).sort()).toEqual(Array.from({ length: 100 }, (_, i) => `offline ${i}`).sort());
    expect(contents.slice(101)).toEqual(['live 0', 'live 1', 'live 2', 'live 3', 'live 4']);
    expect(b.events.filter((e) => e.type === 'MessageSent').slice(1, 101).map((e) => e.version)).toEqual(bySequence);
    expect(increasing(b.events)).toBe(true);
  });

  it('a send whose ack is lost is retried across a reconnect under the same client_message_id: one message', async () => {
    const alice = await stack.client.register('sdk_retry');
    const bob = await stack.client.register('sdk_watch');
    const conversationId = await direct(alice, bob);
    const sockets = trackedSockets();
    let dropAck = true;
    const a = client(alice, {
      WebSocket: sockets.WebSocket,
      inspectFrame: (frame) => {
        if (dropAck && frame.body.case === 'sendAck') {
          dropAck = false;
          setTimeout(() => sockets.kill(), 0); // the ack never arrives; the connection dies
          return false;
        }
        return true;
      },
    });
    const b = client(bob);
    await Promise.all([a.c.connect(), b.c.connect()]);
    b.c.track(conversationId, 0);
    const result = await a.c.send(conversationId, 'exactly once', { clientMessageId: 'retry-1' });
    expect(result).toMatchObject({ duplicate: true, clientMessageId: 'retry-1' });
    expect(sockets.count()).toBe(2);
    const after = await a.c.send(conversationId, 'next');
    await until(() => b.c.cursor(conversationId) === after.sequenceNumber, 5000, 'next at bob');
    expect(b.contents().filter((c) => c === 'exactly once')).toHaveLength(1);
    expect(b.events.find((e) => e.type === 'MessageSent' && e.data.content === 'exactly once')?.version).toBe(result.sequenceNumber);
  });

  it('a lost event is detected by previous_version and filled by Sync; a stale cursor replays on connect', async () => {
    const alice = await stack.client.register('sdk_gap_a');
    const bob = await stack.client.register('sdk_gap_b');
    const conversationId = await direct(alice, bob);
    let dropNext = false;
    const a = client(alice);
    const b = client(bob, {
      inspectFrame: (frame) => {
        if (dropNext && frame.body.case === 'event' && frame.body.value.payload.case === 'messageSent') {
          dropNext = false;
          return false;
        }
        return true;
      },
    });
    await Promise.all([a.c.connect(), b.c.connect()]);
    b.c.track(conversationId, 0);
    const one = await a.c.send(conversationId, 'one');
    await until(() => b.c.cursor(conversationId) === one.sequenceNumber, 5000, 'one');
    dropNext = true;
    await a.c.send(conversationId, 'lost on the way');
    const three = await a.c.send(conversationId, 'three');
    await until(() => b.c.cursor(conversationId) === three.sequenceNumber, 5000, 'three');
    expect(b.contents()).toEqual(['one', 'lost on the way', 'three']);
    expect(b.c.stats().gaps).toBeGreaterThanOrEqual(1);
    expect(b.c.stats().syncRequests).toBeGreaterThanOrEqual(2); // track() + the gap
    expect(increasing(b.events)).toBe(true);

    // a second device of bob with a stale cursor from its store: the Hello replays what it missed
    const store = memoryCursorStore({ [conversationId]: one.sequenceNumber });
    const stale = client(bob, { deviceId: 'dev-2', cursorStore: store });
    await stale.c.connect();
    await until(() => stale.c.cursor(conversationId) === three.sequenceNumber, 5000, 'replay');
    expect(stale.contents()).toEqual(['lost on the way', 'three']);
    expect(store.snapshot()[conversationId]).toBe(three.sequenceNumber);
  });

  it('a wrong password is terminal too', async () => {
    const user = await stack.client.register('sdk_pw');
    const c = createChatClient({ baseUrl, username: user.username, password: 'wrong password!', deviceId: 'd', WebSocket });
    clients.push(c);
    await expect(c.connect()).rejects.toThrow(/client stopped: 4100/);
  });

  it('a rejected token is terminal: no reconnect, connect() rejects', async () => {
    const c = createChatClient({ baseUrl, token: 'not-a-jwt', deviceId: 'd', WebSocket });
    clients.push(c);
    const closed = new Promise<{ terminal: boolean }>((resolve) => c.on('closed', resolve));
    await expect(c.connect()).rejects.toThrow();
    expect((await closed).terminal).toBe(true);
    expect(c.state).toBe('closed');
  });
});
