import WebSocket from 'ws';
import {
  PROTOCOL_VERSION,
  decodeServerFrame,
  encodeClientFrame,
  type ClientBody,
  type ServerFrame,
  type ServerMessage,
} from '../../protocol/index.js';

/**
 * A bare protocol client for tests (the `ws` package): it records every server frame, sends
 * requests with increasing request ids and waits for replies or pushes.
 */
export type TestClient = Awaited<ReturnType<typeof openSocket>>;

export async function openSocket(url: string, options: { headers?: Record<string, string> } = {}) {
  const ws = new WebSocket(url, options.headers === undefined ? {} : { headers: options.headers });
  ws.binaryType = 'nodebuffer';
  const frames: ServerFrame[] = [];
  const undecodable: Buffer[] = [];
  let closed: { code: number; reason: string } | null = null;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const decoded = isBinary ? decodeServerFrame(new Uint8Array(data)) : null;
    if (decoded?.ok) frames.push(decoded.frame);
    else undecodable.push(data);
    wake();
  });
  ws.on('close', (code: number, reason: Buffer) => {
    closed = { code, reason: reason.toString() };
    wake();
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextRequestId = 1;

  async function waitUntil<T>(probe: () => T | undefined, timeoutMs = 5000, what = 'condition'): Promise<T> {
    const found = probe();
    if (found !== undefined) return found;
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = probe();
        if (value !== undefined) {
          cleanup();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${frames.length} frames received, closed: ${JSON.stringify(closed)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
    });
  }

  const client = {
    ws,
    frames,
    undecodable,
    get closed() {
      return closed;
    },
    sendRaw(data: Uint8Array | string) {
      ws.send(data);
    },
    /** Sends a request and resolves with its reply (any frame with this request id). */
    async request(body: ClientBody, timeoutMs = 5000): Promise<ServerFrame> {
      const requestId = nextRequestId++;
      ws.send(encodeClientFrame({ requestId, body }));
      return waitUntil(() => frames.find((f) => f.requestId === requestId), timeoutMs, `reply to ${body.case} #${requestId}`);
    },
    waitUntil,
    /** The first frame (from index `from`) of this case matching `match`. */
    waitFor<C extends ServerFrame['body']['case']>(
      kind: C,
      match: (value: ServerMessage<C>) => boolean = () => true,
      timeoutMs = 5000,
    ): Promise<ServerMessage<C>> {
      return waitUntil(
        () => {
          for (const f of frames) if (f.body.case === kind && match(f.body.value as ServerMessage<C>)) return f.body.value as ServerMessage<C>;
          return undefined;
        },
        timeoutMs,
        kind,
      );
    },
    waitClosed(timeoutMs = 5000) {
      return waitUntil(() => closed ?? undefined, timeoutMs, 'close');
    },
    events(conversationId?: string): ServerMessage<'event'>[] {
      return frames
        .filter((f) => f.body.case === 'event')
        .map((f) => f.body.value as ServerMessage<'event'>)
        .filter((e) => conversationId === undefined || e.conversationId === conversationId);
    },
    close() {
      ws.close(1000);
    },
  };
  return client;
}

/** Opens a socket and completes the handshake; throws unless Welcome comes back. */
export async function connectClient(
  url: string,
  options: { token: string; deviceId?: string; cursors?: { conversationId: string; lastVersion: number }[]; headers?: Record<string, string> },
) {
  const client = await openSocket(url, options.headers === undefined ? {} : { headers: options.headers });
  const reply = await client.request({
    case: 'hello',
    value: { token: options.token, protocolVersion: PROTOCOL_VERSION, deviceId: options.deviceId ?? 'device-1', cursors: options.cursors ?? [] },
  });
  if (reply.body.case !== 'welcome') throw new Error(`expected Welcome, got ${JSON.stringify(reply.body)}`);
  return Object.assign(client, { welcome: reply.body.value });
}
