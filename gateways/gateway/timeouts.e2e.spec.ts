import { connect } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../infra/bus/memory.js';
import { createMemoryPresenceStore } from '../../infra/presence/memory.js';
import { encodeDeliveries } from '../envelope/envelope.js';
import { Connection, type ConnectionDeps, type Socket } from './connection.js';
import { createWsGateway, type WsGateway } from './gateway.js';
import { PROTOCOL_VERSION, encodeClientFrame, encodeServerFrame, decodeServerFrame, goodbyeFrame } from '../protocol/index.js';
import { DEFAULT_SYNC_RATE, createSyncBudget } from './sync-budget.js';
import { connectClient, openSocket } from './testing/client.js';

/**
 * Timeouts and backpressure, with the gateway's collaborators stubbed: handshake timeout (4005),
 * heartbeat timeout (4001), slow consumers dropped (4003), token expiry (4004), per-connection
 * rate limits (RATE_LIMITED, then 4006), delivery envelopes reaching sockets.
 */
const logger = pino({ level: 'silent' });
const tokens = {
  async verify(token: string) {
    // "user:<id>" never expires; "expiring:<ms>:<id>" expires <ms> from now.
    const expiring = /^expiring:(\d+):(.+)$/.exec(token);
    if (expiring) return { userId: expiring[2]!, username: expiring[2]!, expiresAtMs: Date.now() + Number(expiring[1]) };
    if (!token.startsWith('user:')) throw new Error('bad token');
    return { userId: token.slice(5), username: token.slice(5) };
  },
};
const unused = async (): Promise<never> => {
  throw new Error('not used in this test');
};
const commands = { sendMessage: unused, markWatermark: unused, access: unused, otherMembers: unused, screen: unused };
const store = { readStream: async () => [] };
const queries = { contacts: async () => [] };

async function eventuallyTrue(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('gateway timeouts and backpressure', () => {
  const bus = createMemoryBus();
  const presence = createMemoryPresenceStore();
  let gateway: WsGateway;
  let url: string;

  beforeAll(async () => {
    gateway = createWsGateway({
      nodeId: 'node-t',
      tokens,
      commands,
      store,
      queries,
      presence,
      bus,
      logger,
      handshakeTimeoutMs: 300,
      heartbeatTimeoutMs: 600,
      sweepIntervalMs: 50,
    });
    url = `ws://127.0.0.1:${await gateway.listen('127.0.0.1', 0)}/ws`;
  });
  afterAll(async () => {
    await gateway.close();
    await bus.close();
    await presence.close();
  });

  it('closes 4005 without a Hello, after a Goodbye', async () => {
    const c = await openSocket(url);
    const goodbye = await c.waitFor('goodbye');
    expect(goodbye.closeCode).toBe(4005);
    expect((await c.waitClosed()).code).toBe(4005);
  });

  it('closes 4001 after two heartbeat intervals of silence, and the user goes offline', async () => {
    const c = await connectClient(url, { token: 'user:quiet' });
    expect((await presence.get(['quiet']))[0]?.status).toBe('online');
    expect((await c.waitClosed(3000)).code).toBe(4001);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await presence.get(['quiet']))[0]?.status).toBe('offline');
  });

  it('routes a delivery envelope to every connection of the listed users', async () => {
    const a1 = await connectClient(url, { token: 'user:u1', deviceId: 'a' });
    const a2 = await connectClient(url, { token: 'user:u1', deviceId: 'b' });
    const other = await connectClient(url, { token: 'user:u2' });
    const frame = encodeServerFrame(goodbyeFrame(4000, 'a stand-in frame'));
    bus.sendToNode('node-t', encodeDeliveries([{ conversationId: 'c', version: 1, userIds: ['u1'], frame }]));
    bus.sendToNode('node-t', new Uint8Array([1, 2, 3])); // garbage is dropped, not fatal
    bus.sendToNode('node-t', encodeDeliveries([{ conversationId: 'c', version: 1, userIds: ['u1'], frame }])); // duplicate version: dropped
    await a1.waitFor('goodbye', (g) => g.reason === 'a stand-in frame');
    await a2.waitFor('goodbye', (g) => g.reason === 'a stand-in frame');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(a1.frames.filter((f) => f.body.case === 'goodbye')).toHaveLength(1);
    expect(other.frames.some((f) => f.body.case === 'goodbye')).toBe(false);
    for (const c of [a1, a2, other]) c.close();
  });

  it("sends an envelope's several events for one connection in envelope order", async () => {
    const c = await connectClient(url, { token: 'user:u3' });
    const frame = (reason: string) => encodeServerFrame(goodbyeFrame(4000, reason));
    bus.sendToNode(
      'node-t',
      encodeDeliveries([
        { conversationId: 'c3', version: 1, userIds: ['u3'], frame: frame('first') },
        { conversationId: 'c4', version: 1, userIds: ['u4', 'u3'], frame: frame('second') },
        { conversationId: 'c3', version: 2, userIds: ['u3'], frame: frame('third') },
      ]),
    );
    await c.waitFor('goodbye', (g) => g.reason === 'third');
    const reasons = c.frames.flatMap((f) => (f.body.case === 'goodbye' ? [f.body.value.reason] : []));
    expect(reasons).toEqual(['first', 'second', 'third']);
    c.close();
  });

  it('together(): the deliveries inside leave under one cork of the socket; a socket without cork sends each at once', async () => {
    const hub = { register() {}, unregister() {}, addContacts() {}, authenticate: () => null };
    const deps: ConnectionDeps = { nodeId: 'n', tokens, commands, store, queries, presence, logger, hub, clock: Date.now, maxBufferedBytes: 1 << 20, maxHeldEvents: 10, syncBudget: createSyncBudget(DEFAULT_SYNC_RATE, Date.now) };
    const open = async (socket: Socket, user: string) => {
      const c = new Connection(deps, socket, '');
      c.onMessage(encodeClientFrame({ requestId: 1, body: { case: 'hello', value: { token: `user:${user}`, protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [] } } }).slice().buffer, true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(c.state).toBe('open');
      return c;
    };
    const log: string[] = [];
    let corked = false;
    const corking: Socket = {
      send(bytes) {
        log.push(`${corked ? 'corked' : 'direct'} ${bytes[0]}`);
        return 'ok';
      },
      bufferedAmount: () => 0,
      end() {},
      cork(sends) {
        corked = true;
        log.push('cork');
        sends();
        corked = false;
        log.push('uncork');
      },
    };
    const c = await open(corking, 'corked');
    log.length = 0; // the Welcome and what follows the Hello
    c.together(() => {
      c.deliver('c', 1, new Uint8Array([7]));
      c.deliver('c', 2, new Uint8Array([8]));
    });
    expect(log).toEqual(['cork', 'corked 7', 'corked 8', 'uncork']);
    c.onClose();

    const sent: number[] = [];
    const plain: Socket = { send: (bytes) => { sent.push(bytes[0]!); return 'ok'; }, bufferedAmount: () => 0, end() {} };
    const d = await open(plain, 'plain');
    sent.length = 0;
    d.together(() => {
      d.deliver('c', 1, new Uint8Array([7]));
      d.deliver('c', 2, new Uint8Array([8]));
    });
    expect(sent).toEqual([7, 8]);
    d.onClose();
  });

  it('a slow consumer dropped in the middle of a corked envelope still gets its close and a FIN', async () => {
    // A gateway that holds little for a client, and a raw TCP client that stops reading. (uWS sends
    // the FIN of an end() made inside a cork only once buffered data drains, and none at all when
    // nothing is buffered: the gateway makes such an end() after the cork, see UwsSocket.end.)
    const small = createWsGateway({ nodeId: 'node-small', tokens, commands, store, queries, presence, bus, logger, maxBufferedBytes: 64 * 1024 });
    const port = await small.listen('127.0.0.1', 0);
    const socket = connect(port, '127.0.0.1');
    try {
      let received = 0;
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(`GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      await eventuallyTrue(() => received > 0); // the 101
      const hello = encodeClientFrame({ requestId: 1, body: { case: 'hello', value: { token: 'user:raw', protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [] } } });
      const mask = [1, 2, 3, 4];
      socket.write(Buffer.from([0x82, 0x80 | hello.length, ...mask, ...hello.map((b, i) => b ^ mask[i % 4]!)]));
      await eventuallyTrue(() => small.stats().authenticated === 1);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the Welcome read
      socket.pause();
      // One envelope of 200 frames of 32 KB for this connection: the node drops it part-way.
      const frame = encodeServerFrame(goodbyeFrame(4000, 'x'.repeat(32 * 1024)));
      const items = Array.from({ length: 200 }, (_, i) => ({ conversationId: 'big', version: i + 1, userIds: ['raw'], frame }));
      bus.sendToNode('node-small', encodeDeliveries(items));
      await eventuallyTrue(() => small.stats().connections === 0);
      // Reading again, the client gets to the end of what was sent, then the FIN.
      const ended = new Promise<boolean>((resolve) => {
        socket.once('end', () => resolve(true));
        setTimeout(() => resolve(false), 3000);
      });
      socket.resume();
      expect(await ended).toBe(true);
    } finally {
      socket.destroy();
      await small.close();
    }
  });

  it('drops a slow consumer with Goodbye 4003 instead of buffering without bound', async () => {
    const sent: Uint8Array[] = [];
    let ended: number | null = null;
    let buffered = 0;
    const socket: Socket = {
      send(bytes) {
        sent.push(bytes);
        return 'ok';
      },
      bufferedAmount: () => buffered,
      end(code) {
        ended = code;
      },
    };
    const hub = { register() {}, unregister() {}, addContacts() {}, authenticate: () => null };
    const deps: ConnectionDeps = { nodeId: 'n', tokens, commands, store, queries, presence, logger, hub, clock: Date.now, maxBufferedBytes: 1000, maxHeldEvents: 10, syncBudget: createSyncBudget(DEFAULT_SYNC_RATE, Date.now) };
    const c = new Connection(deps, socket, '');
    const hello = encodeClientFrame({ requestId: 1, body: { case: 'hello', value: { token: 'user:slow', protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [] } } });
    c.onMessage(hello.slice().buffer, true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(c.state).toBe('open');
    c.deliver('c', 1, new Uint8Array([1]));
    expect(ended).toBeNull();
    buffered = 5000;
    c.deliver('c', 2, new Uint8Array([2]));
    expect(ended).toBe(4003);
    const last = decodeServerFrame(sent.at(-1)!);
    expect(last.ok && last.frame.body.case === 'goodbye' && last.frame.body.value.closeCode).toBe(4003);
    c.onClose();
  });

  it('ends the session with Goodbye 4004 when its token expires, and the user goes offline', async () => {
    const c = await connectClient(url, { token: 'expiring:400:short_lived' });
    expect((await presence.get(['short_lived']))[0]?.status).toBe('online');
    const goodbye = await c.waitFor('goodbye', undefined, 3000);
    expect(goodbye.closeCode).toBe(4004);
    expect(goodbye.reason).toBe('token_expired');
    expect((await c.waitClosed(3000)).code).toBe(4004);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await presence.get(['short_lived']))[0]?.status).toBe('offline');
  });

  it('answers frames over the rate limit with RATE_LIMITED and retry_after_ms, and closes a flood with 4006', async () => {
    let now = 1_000_000;
    const sent: Uint8Array[] = [];
    let ended: number | null = null;
    const socket: Socket = {
      send(bytes) {
        sent.push(bytes);
        return 'ok';
      },
      bufferedAmount: () => 0,
      end(code) {
        ended = code;
      },
    };
    const hub = { register() {}, unregister() {}, addContacts() {}, authenticate: () => null };
    const deps: ConnectionDeps = {
      nodeId: 'n', tokens, commands, store, queries, presence, logger, hub,
      clock: () => now,
      maxBufferedBytes: 1 << 20,
      maxHeldEvents: 10,
      syncBudget: createSyncBudget(DEFAULT_SYNC_RATE, () => now),
      rateLimit: { perSecond: 10, burst: 5, floodFrames: 20 },
    };
    const c = new Connection(deps, socket, '');
    const frame = (requestId: number, body: Parameters<typeof encodeClientFrame>[0]['body']) => encodeClientFrame({ requestId, body }).slice().buffer;
    c.onMessage(frame(1, { case: 'hello', value: { token: 'user:flooder', protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [] } }), true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(c.state).toBe('open');
    const replies = () =>
      sent.map((b) => decodeServerFrame(b)).flatMap((d) => (d.ok ? [d.frame] : [])).filter((f) => f.requestId >= 100);
    const ping = (requestId: number) => c.onMessage(frame(requestId, { case: 'ping', value: { clientTimeMs: 0 } }), true);

    // A burst of 5 is served; the 6th is refused with a hint of when to retry (1 frame at 10/s: 100 ms).
    for (let i = 0; i < 6; i++) ping(100 + i);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(replies().filter((f) => f.body.case === 'pong').map((f) => f.requestId).sort()).toEqual([100, 101, 102, 103, 104]);
    const refused = replies().find((f) => f.requestId === 105);
    expect(refused?.body.case).toBe('error');
    if (refused?.body.case !== 'error') throw new Error('unreachable');
    expect(refused.body.value.reason).toBe('rate_limited');
    expect(refused.body.value.retryable).toBe(true);
    expect(refused.body.value.retryAfterMs).toBe(100);

    // After the wait it hints, the client is served again; the connection stayed open.
    now += 100;
    ping(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(replies().find((f) => f.requestId === 200)?.body.case).toBe('pong');
    expect(ended).toBeNull();

    // A client that keeps sending without pausing is cut off.
    for (let i = 0; i < 20; i++) ping(300 + i);
    expect(ended).toBe(4006);
    expect(c.state).toBe('closed');
    c.onClose();
  });
  it('closes a steady flood over the rate limit with 4006 even though frames in between are admitted, and forgets refusals older than the window', async () => {
    let now = 5_000_000;
    const sent: Uint8Array[] = [];
    let ended: number | null = null;
    const socket: Socket = {
      send(bytes) {
        sent.push(bytes);
        return 'ok';
      },
      bufferedAmount: () => 0,
      end(code) {
        ended = code;
      },
    };
    const deps: ConnectionDeps = {
      nodeId: 'n', tokens, commands, store, queries, presence, logger,
      hub: { register() {}, unregister() {}, addContacts() {}, authenticate: () => null },
      clock: () => now,
      maxBufferedBytes: 1 << 20,
      maxHeldEvents: 10,
      syncBudget: createSyncBudget(DEFAULT_SYNC_RATE, () => now),
      rateLimit: { perSecond: 10, burst: 5, floodFrames: 20, floodWindowMs: 10_000 },
    };
    const open = async (user: string) => {
      const c = new Connection(deps, socket, '');
      c.onMessage(encodeClientFrame({ requestId: 1, body: { case: 'hello', value: { token: `user:${user}`, protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [] } } }).slice().buffer, true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(c.state).toBe('open');
      return c;
    };
    const ping = (c: Connection, requestId: number) => c.onMessage(encodeClientFrame({ requestId, body: { case: 'ping', value: { clientTimeMs: 0 } } }).slice().buffer, true);
    const answers = (from: number) =>
      sent.map((b) => decodeServerFrame(b)).flatMap((d) => (d.ok && d.frame.requestId >= from ? [d.frame.body.case] : []));

    // Twice the allowed rate, for as long as it takes: every other frame is served, every other refused.
    const flooder = await open('steady_flooder');
    for (let i = 0; i < 5; i++) ping(flooder, 1_000 + i); // the burst
    let tick = 0;
    for (; tick < 200 && ended === null; tick++) {
      now += 100; // one frame's worth of allowance
      ping(flooder, 2_000 + 2 * tick);
      ping(flooder, 2_001 + 2 * tick);
      await new Promise((resolve) => setImmediate(resolve)); // the admitted Ping's Pong goes out
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answers(2_000).filter((c) => c === 'pong').length).toBeGreaterThan(10); // admitted frames all along
    expect(ended).toBe(4006);
    expect(tick).toBeLessThanOrEqual(20); // the 20th refusal within the window closed it
    flooder.onClose();

    // A client refused now and then, fewer than 20 times in any 10 s, is never closed.
    ended = null;
    const steady = await open('now_and_then');
    for (let i = 0; i < 5; i++) ping(steady, 10_000 + i);
    for (let second = 0; second < 60; second++) {
      ping(steady, 20_000 + second); // refused: the bucket is empty
      now += 1_000;
      for (let i = 0; i < 5; i++) ping(steady, 30_000 + 10 * second + i); // refilled: served
    }
    expect(ended).toBeNull();
    expect(steady.state).toBe('open');
    steady.onClose();
  });
});
