import { afterEach, describe, expect, it } from 'vitest';
import { ContentType, ErrorCode, decodeClientFrame, encodeServerFrame, syncRequiredFrame, type ClientFrame, type ClientFrameCase, type ClientRequest, type ServerFrame } from '../protocol/index.js';
import { createChatClient, type ChatClient, type ChatClientOptions, type FetchLike, type ReceivedEvent, type WebSocketLike } from './index.js';

/**
 * The SDK noticing a quiet feed (PROTOCOL.md, "Noticing a quiet feed"), against a scripted server:
 * (a) a Ping with a deadline, (b) an acknowledged message whose Event does not come, (c) the
 * server's SyncRequired. In each case the application ends with every message once, in order.
 */

/** A server script: the messages of each conversation it holds, and what it does with each frame. */
class FakeServer {
  /** conversation → message contents; the message at index i has version i + 1. */
  readonly conversations = new Map<string, string[]>();
  sockets: FakeSocket[] = [];
  /** Whether the current socket answers Pings, and passes live events on. */
  answerPings = true;
  deliverLive = true;
  /** Answers to the next Syncs instead of replaying (e.g. a retryable Error). */
  syncRefusals: ServerFrame['body'][] = [];

  get socket(): FakeSocket {
    return this.sockets.at(-1)!;
  }

  eventFrame(conversationId: string, version: number): ServerFrame {
    const content = this.conversations.get(conversationId)![version - 1]!;
    return {
      requestId: 0,
      body: {
        case: 'event',
        value: {
          conversationId,
          version,
          eventId: `e-${conversationId}-${version}`,
          createdAtMs: 1_700_000_000_000,
          previousVersion: version - 1,
          payload: {
            case: 'messageSent',
            value: { messageId: `m-${conversationId}-${version}`, senderId: 'u1', content, contentType: ContentType.TEXT, createdAtMs: 1_700_000_000_000 },
          },
        },
      },
    };
  }

  /** A message stored on the server; pushed live unless deliveries are being lost. */
  store(conversationId: string, content: string): number {
    const list = this.conversations.get(conversationId) ?? [];
    this.conversations.set(conversationId, list);
    list.push(content);
    if (this.deliverLive) this.socket.push(this.eventFrame(conversationId, list.length));
    return list.length;
  }

  replay(socket: FakeSocket, cursors: { conversationId: string; lastVersion: number }[]): void {
    for (const { conversationId, lastVersion } of cursors) {
      const list = this.conversations.get(conversationId) ?? [];
      for (let v = lastVersion + 1; v <= list.length; v++) socket.push(this.eventFrame(conversationId, v));
      socket.push({ requestId: 0, body: { case: 'syncDone', value: { conversationId, version: list.length, accessEnded: false } } });
    }
  }

  handle(socket: FakeSocket, frame: ClientFrame): void {
    const reply = (body: ServerFrame['body']) => socket.push({ requestId: frame.requestId, body });
    switch (frame.body.case) {
      case 'hello':
        reply({ case: 'welcome', value: { userId: 'u1', protocolVersion: 1, sessionId: 's', heartbeatIntervalMs: 30_000, serverTimeMs: 1, maxFrameBytes: 131072 } });
        this.replay(socket, frame.body.value.cursors);
        return;
      case 'ping':
        if (this.answerPings) reply({ case: 'pong', value: { clientTimeMs: frame.body.value.clientTimeMs, serverTimeMs: 2 } });
        return;
      case 'sendMessage': {
        const { conversationId, content } = frame.body.value;
        const version = this.store(conversationId, content);
        reply({ case: 'sendAck', value: { conversationId, messageId: `m-${conversationId}-${version}`, sequenceNumber: version, createdAtMs: 1, duplicate: false } });
        return;
      }
      case 'sync': {
        const refusal = this.syncRefusals.shift();
        if (refusal !== undefined) {
          reply(refusal);
          return;
        }
        reply({ case: 'ok', value: {} });
        this.replay(socket, frame.body.value.cursors);
        return;
      }
      default:
        reply({ case: 'ok', value: {} });
        return;
    }
  }
}

class FakeSocket implements WebSocketLike {
  binaryType = '';
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  readonly sent: ClientFrame[] = [];
  closed = false;

  constructor(private readonly server: FakeServer) {
    server.sockets.push(this);
    setTimeout(() => this.onopen?.({}), 0);
  }
  send(data: Uint8Array): void {
    const decoded = decodeClientFrame(data);
    if (!decoded.ok) throw new Error(decoded.error.message);
    this.sent.push(decoded.frame);
    setTimeout(() => {
      if (!this.closed) this.server.handle(this, decoded.frame);
    }, 0);
  }
  push(frame: ServerFrame): void {
    if (!this.closed) this.onmessage?.({ data: encodeServerFrame(frame) });
  }
  close(): void {
    this.closed = true;
  }
  /** The values of the frames of one kind this socket sent. */
  of<C extends ClientFrameCase>(kind: C): ClientRequest<C>[] {
    const out: ClientRequest<C>[] = [];
    for (const f of this.sent) if (f.body.case === kind) out.push(f.body.value as ClientRequest<C>);
    return out;
  }
}

const fakeFetch: FetchLike = async () => ({ ok: true, status: 200, json: async () => ({ websocket_url: 'ws://fake/ws' }), text: async () => '' });

async function until(probe: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the SDK notices a quiet feed', () => {
  let client: ChatClient | null = null;
  afterEach(async () => {
    await client?.close();
    client = null;
  });

  function start(server: FakeServer, extra: Partial<ChatClientOptions> = {}) {
    const WebSocket = class extends FakeSocket {
      constructor(_url: string) {
        super(server);
      }
    };
    client = createChatClient({ baseUrl: 'http://fake', token: 't', deviceId: 'd', WebSocket, fetch: fakeFetch, reconnect: { minMs: 10, maxMs: 20 }, ...extra } as ChatClientOptions);
    const events: ReceivedEvent[] = [];
    client.on('event', (e) => events.push(e));
    const contents = (conversationId: string) => events.flatMap((e) => (e.type === 'MessageSent' && e.conversation_id === conversationId ? [e.data.content] : []));
    return { c: client, contents };
  }

  it('(a) a connection silent after a Ping (no Pong, no other frame) is closed, and the client reconnects and syncs from its cursors', async () => {
    const server = new FakeServer();
    server.conversations.set('conv', ['one', 'two']);
    const { c, contents } = start(server, { heartbeatIntervalMs: 40, heartbeatTimeoutMs: 60 });
    await c.connect();
    c.track('conv', 0);
    await until(() => contents('conv').length === 2, 'the replay');
    // The connection dies without a close (a half-open TCP connection): nothing comes any more.
    server.answerPings = false;
    server.deliverLive = false;
    server.store('conv', 'three'); // lost with the dead connection
    const first = server.socket;
    server.answerPings = true;
    server.deliverLive = true;
    first.push = () => {}; // from now on the first socket is silent
    await until(() => server.sockets.length === 2 && c.state === 'open', 'a new connection');
    expect(first.closed).toBe(true);
    expect(server.socket.of('hello')[0]!.cursors).toEqual([{ conversationId: 'conv', lastVersion: 2 }]);
    await until(() => contents('conv').length === 3, 'the message sent while the connection was dead');
    expect(contents('conv')).toEqual(['one', 'two', 'three']);
    expect(c.stats()).toMatchObject({ heartbeatTimeouts: 1, reconnects: 1 });
  });

  it('(a) a busy connection whose Pong is only late is kept: any frame meets the deadline', async () => {
    const server = new FakeServer();
    const { c, contents } = start(server, { heartbeatIntervalMs: 30, heartbeatTimeoutMs: 40 });
    await c.connect();
    c.track('busy', 0);
    server.answerPings = false; // Pongs stuck behind a long queue on the server
    for (let i = 1; i <= 30; i++) {
      server.store('busy', `m${i}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(server.sockets).toHaveLength(1);
    expect(c.stats().heartbeatTimeouts).toBe(0);
    expect(contents('busy')).toEqual(Array.from({ length: 30 }, (_, i) => `m${i + 1}`));
  });

  it('(b) an acknowledged message whose Event does not come in time makes the client sync that conversation in place', async () => {
    const server = new FakeServer();
    server.conversations.set('conv', ['one']);
    const { c, contents } = start(server, { feedDeadlineMs: 50 });
    await c.connect();
    c.track('conv', 0);
    await until(() => contents('conv').length === 1, 'the replay');
    server.deliverLive = false; // the live feed went quiet: events are stored, not delivered
    const sent = await c.send('conv', 'two');
    expect(sent.sequenceNumber).toBe(2);
    server.deliverLive = true;
    await until(() => contents('conv').length === 2, 'the synced message');
    expect(contents('conv')).toEqual(['one', 'two']);
    expect(server.socket.of('sync').at(-1)).toEqual({ cursors: [{ conversationId: 'conv', lastVersion: 1 }] });
    expect(server.sockets).toHaveLength(1); // in place: no reconnect
    expect(c.stats().quietFeedSyncs).toBe(1);
    // Delivered normally: nothing more to sync.
    await c.send('conv', 'three');
    await until(() => contents('conv').length === 3, 'the live message');
    await new Promise((r) => setTimeout(r, 100));
    expect(c.stats().quietFeedSyncs).toBe(1);
    expect(contents('conv')).toEqual(['one', 'two', 'three']);
  });

  it('(c) SyncRequired makes the client sync what it follows, in place, and retries a Sync refused as retryable', async () => {
    const server = new FakeServer();
    server.conversations.set('a', ['a1']);
    server.conversations.set('b', ['b1']);
    const { c, contents } = start(server);
    await c.connect();
    c.track('a', 0);
    c.track('b', 0);
    await until(() => contents('a').length === 1 && contents('b').length === 1, 'the replays');
    server.deliverLive = false; // the node lost deliveries (its bus connection dropped)
    server.store('a', 'a2');
    server.store('b', 'b2');
    server.store('b', 'b3');
    server.deliverLive = true;
    server.syncRefusals.push({
      case: 'error',
      value: { code: ErrorCode.INTERNAL, message: 'postgresql is unavailable; retry shortly', retryable: true, reason: 'dependency_unavailable', retryAfterMs: 20 },
    });
    const syncsBefore = server.socket.of('sync').length;
    server.socket.push(syncRequiredFrame('bus_reconnected', 30));
    await until(() => contents('a').length === 2 && contents('b').length === 3, 'the missed messages');
    expect(contents('a')).toEqual(['a1', 'a2']);
    expect(contents('b')).toEqual(['b1', 'b2', 'b3']);
    const syncs = server.socket.of('sync').slice(syncsBefore);
    expect(syncs).toHaveLength(2); // refused once, then done
    expect(syncs[1]!.cursors).toEqual([
      { conversationId: 'a', lastVersion: 1 },
      { conversationId: 'b', lastVersion: 1 },
    ]);
    expect(server.sockets).toHaveLength(1);
    expect(c.stats().syncRequired).toBe(1);

    // Naming conversations: only those (that the client follows) are synced.
    server.deliverLive = false;
    server.store('b', 'b4');
    server.deliverLive = true;
    server.socket.push(syncRequiredFrame('presence_lost', 0, ['b', 'not-followed']));
    await until(() => contents('b').length === 4, 'the named conversation');
    expect(server.socket.of('sync').at(-1)).toEqual({ cursors: [{ conversationId: 'b', lastVersion: 3 }] });
    expect(contents('a')).toEqual(['a1', 'a2']);
  });
});
