import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../infra/bus/memory.js';
import { createMemoryPresenceStore } from '../../infra/presence/memory.js';
import { encodeDeliveries } from '../delivery/envelope.js';
import { Connection, type ConnectionDeps, type Socket } from './connection.js';
import { createWsGateway, type WsGateway } from './gateway.js';
import { PROTOCOL_VERSION, encodeClientFrame, encodeServerFrame, decodeServerFrame, goodbyeFrame } from './protocol/index.js';
import { connectClient, openSocket } from './testing/client.js';

/**
 * Timeouts and backpressure, with the gateway's collaborators stubbed: handshake timeout (4005),
 * heartbeat timeout (4001), slow consumers dropped (4003), delivery envelopes reaching sockets.
 */
const logger = pino({ level: 'silent' });
const tokens = {
  async verify(token: string) {
    if (!token.startsWith('user:')) throw new Error('bad token');
    return { userId: token.slice(5), username: token.slice(5) };
  },
};
const unused = async (): Promise<never> => {
  throw new Error('not used in this test');
};
const commands = { sendMessage: unused, markWatermark: unused, access: unused, describe: unused };
const store = { readStream: async () => [] };
const queries = { inbox: async () => [] };

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
    const hub = { register() {}, unregister() {}, joinConversation() {}, addContacts() {} };
    const deps: ConnectionDeps = { nodeId: 'n', tokens, commands, store, queries, presence, logger, hub, clock: Date.now, maxBufferedBytes: 1000, maxHeldEvents: 10 };
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
});
