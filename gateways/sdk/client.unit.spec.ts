import { afterEach, describe, expect, it } from 'vitest';
import { decodeClientFrame, encodeServerFrame, goodbyeFrame, type ClientFrame, type ServerFrame } from '../protocol/index.js';
import { createChatClient, type ChatClient, type FetchLike, type WebSocketLike } from './index.js';

/** The SDK against a scripted fake socket: close-code handling, ack coalescing, typing throttle. */
class FakeSocket implements WebSocketLike {
  static instances: FakeSocket[] = [];
  binaryType = '';
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  readonly sent: ClientFrame[] = [];

  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
    setTimeout(() => this.onopen?.({}), 0);
  }
  send(data: Uint8Array): void {
    const decoded = decodeClientFrame(data);
    if (!decoded.ok) throw new Error(decoded.error.message);
    const frame = decoded.frame;
    this.sent.push(frame);
    const reply = (body: ServerFrame['body']): void => {
      setTimeout(() => this.push({ requestId: frame.requestId, body }), 0);
    };
    switch (frame.body.case) {
      case 'hello':
        reply({
          case: 'welcome',
          value: { userId: 'u1', protocolVersion: 1, sessionId: 's', heartbeatIntervalMs: 30_000, serverTimeMs: 1, maxFrameBytes: 131072 },
        });
        return;
      case 'ackDelivered':
      case 'markRead':
      case 'typing':
        reply({ case: 'ok', value: {} });
        return;
      default:
        return;
    }
  }
  push(frame: ServerFrame): void {
    this.onmessage?.({ data: encodeServerFrame(frame) });
  }
  close(): void {}
  serverClose(code: number, reason = ''): void {
    this.onclose?.({ code, reason });
  }
  cases(): string[] {
    return this.sent.map((f) => f.body.case);
  }
}

const fakeFetch: FetchLike = async () => ({ ok: true, status: 200, json: async () => ({ websocket_url: 'ws://fake/ws' }), text: async () => '' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('chat client SDK (fake socket)', () => {
  let client: ChatClient | null = null;
  afterEach(async () => {
    await client?.close();
    FakeSocket.instances = [];
  });

  function make() {
    client = createChatClient({ baseUrl: 'http://fake', token: 't', deviceId: 'd', WebSocket: FakeSocket, fetch: fakeFetch, reconnect: { minMs: 10, maxMs: 20 }, ackDelayMs: 20 });
    return client;
  }

  it('reconnects after a reconnect-range close, honouring Goodbye.reconnect_after_ms', async () => {
    const c = make();
    await c.connect();
    const first = FakeSocket.instances[0]!;
    const started = Date.now();
    const reopened = new Promise<void>((resolve) => c.on('open', () => resolve()));
    first.push(goodbyeFrame(4000, 'draining', 150));
    first.serverClose(4000, 'draining');
    expect(c.state).toBe('reconnecting');
    await reopened;
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(FakeSocket.instances).toHaveLength(2);
    expect(c.stats().reconnects).toBe(1);
  });

  it('comes back after a refusal at the door (4007), no sooner than Goodbye.reconnect_after_ms and spread over half as long again', async () => {
    for (const random of [() => 0, () => 0.999]) {
      FakeSocket.instances = [];
      const c = createChatClient({ baseUrl: 'http://fake', token: 't', deviceId: 'd', WebSocket: FakeSocket, fetch: fakeFetch, reconnect: { minMs: 10, maxMs: 20 }, random });
      client = c;
      await c.connect();
      const disconnected = new Promise<{ code: number; reconnectInMs: number | null }>((resolve) => c.on('disconnected', resolve));
      const reopened = new Promise<void>((resolve) => c.on('open', () => resolve()));
      FakeSocket.instances[0]!.push(goodbyeFrame(4007, 'too_many_connections', 100));
      FakeSocket.instances[0]!.serverClose(4007, 'too_many_connections');
      const { code, reconnectInMs } = await disconnected;
      expect(code).toBe(4007);
      expect(reconnectInMs).toBe(random() === 0 ? 100 : 150);
      expect(c.state).toBe('reconnecting');
      await reopened;
      expect(FakeSocket.instances).toHaveLength(2);
      await c.close();
    }
  });

  it('stops on a terminal close code and rejects pending sends', async () => {
    const c = make();
    await c.connect();
    const pending = c.send('conv', 'never acked');
    const closed = new Promise<{ code: number; terminal: boolean }>((resolve) => c.on('closed', resolve));
    FakeSocket.instances[0]!.serverClose(4103, 'forbidden');
    expect(await closed).toMatchObject({ code: 4103, terminal: true });
    await expect(pending).rejects.toThrow(/client stopped/);
    await sleep(60);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(c.state).toBe('closed');
  });

  it('coalesces acks into one frame per conversation and throttles typing to one signal per second', async () => {
    const c = make();
    await c.connect();
    const socket = FakeSocket.instances[0]!;
    c.ackDelivered('conv', 3);
    c.ackDelivered('conv', 5);
    c.ackDelivered('conv', 4);
    c.markRead('other', 2);
    await sleep(60);
    const acks = socket.sent.filter((f) => f.body.case === 'ackDelivered' || f.body.case === 'markRead').map((f) => f.body.value);
    expect(acks).toEqual([
      { conversationId: 'other', upToVersion: 2 },
      { conversationId: 'conv', upToVersion: 5 },
    ]);
    await c.typing('conv', true);
    await c.typing('conv', true);
    await c.typing('conv', false);
    expect(socket.sent.filter((f) => f.body.case === 'typing').map((f) => f.body.value)).toEqual([
      { conversationId: 'conv', isTyping: true },
      { conversationId: 'conv', isTyping: false },
    ]);
  });
});
