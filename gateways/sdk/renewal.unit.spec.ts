import { afterEach, describe, expect, it } from 'vitest';
import { decodeClientFrame, encodeServerFrame, ErrorCode, type ClientFrame, type ServerFrame } from '../protocol/index.js';
import { createTokenKeeper } from './credentials.js';
import { createChatClient, type ChatClient, type FetchLike, type SessionTokens, type WebSocketLike } from './index.js';
import { restClient } from './rest.js';

/**
 * In-band renewal against a scripted server: when the open connection's token nears its expiry
 * the SDK refreshes it and sends Reauthenticate; transient failures are retried, a server without
 * the frame is left alone, and the connection is never replaced.
 */

/** A JWT-shaped token (the SDK reads exp and iat, never the signature). */
function jwt(lifetimeMs: number, n: number): string {
  const nowS = Date.now() / 1000;
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256' })}.${b64({ sub: 'u1', iat: nowS, exp: nowS + lifetimeMs / 1000, n })}.c2ln`;
}

type ReauthAnswer = (frame: ClientFrame, n: number) => ServerFrame['body'];

class ScriptedSocket implements WebSocketLike {
  static instances: ScriptedSocket[] = [];
  static answer: ReauthAnswer = () => ({ case: 'ok', value: {} });
  binaryType = '';
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  readonly reauths: string[] = [];

  constructor(readonly url: string) {
    ScriptedSocket.instances.push(this);
    setTimeout(() => this.onopen?.({}), 0);
  }
  send(data: Uint8Array): void {
    const decoded = decodeClientFrame(data);
    if (!decoded.ok) throw new Error(decoded.error.message);
    const frame = decoded.frame;
    const reply = (body: ServerFrame['body']) => setTimeout(() => this.onmessage?.({ data: encodeServerFrame({ requestId: frame.requestId, body }) }), 0);
    if (frame.body.case === 'hello') {
      reply({ case: 'welcome', value: { userId: 'u1', protocolVersion: 1, sessionId: 's', heartbeatIntervalMs: 30_000, serverTimeMs: Date.now(), maxFrameBytes: 131072 } });
    } else if (frame.body.case === 'reauthenticate') {
      this.reauths.push(frame.body.value.token);
      reply(ScriptedSocket.answer(frame, this.reauths.length));
    }
  }
  close(): void {}
}

/** REST: discovery, and refreshes answered by `refreshes` in turn (a status, or a new token of `lifetimeMs`). */
function scriptedRest(refreshes: (number | 'ok')[], lifetimeMs: number) {
  const issued: string[] = [];
  let calls = 0;
  const impl: FetchLike = async (input) => {
    const path = new URL(input).pathname;
    if (path === '/api/v1/auth/refresh') {
      const outcome = refreshes[Math.min(calls++, refreshes.length - 1)];
      if (outcome !== 'ok') return { ok: false, status: outcome ?? 500, json: async () => ({}), text: async () => 'unavailable' };
      const token = jwt(lifetimeMs, issued.length + 1);
      issued.push(token);
      return { ok: true, status: 200, json: async () => ({ user_id: 'u1', token, refresh_token: `r${issued.length}`, expires_in: lifetimeMs / 1000 }), text: async () => '' };
    }
    return { ok: true, status: 200, json: async () => ({ websocket_url: 'ws://fake/ws' }), text: async () => '' };
  };
  return { impl, issued, calls: () => calls };
}

const until = async (probe: () => boolean, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('chat client SDK: renewing the token in band (scripted server)', () => {
  let client: ChatClient | null = null;
  afterEach(async () => {
    await client?.close();
    client = null;
    ScriptedSocket.instances = [];
    ScriptedSocket.answer = () => ({ case: 'ok', value: {} });
  });

  function start(rest: ReturnType<typeof scriptedRest>, firstLifetimeMs: number, onTokens?: (t: SessionTokens) => void) {
    const errors: Error[] = [];
    client = createChatClient({
      baseUrl: 'http://fake',
      deviceId: 'd',
      token: jwt(firstLifetimeMs, 0),
      refreshToken: 'r0',
      WebSocket: ScriptedSocket,
      fetch: rest.impl,
      reconnect: { minMs: 20, maxMs: 40 },
      ...(onTokens === undefined ? {} : { onTokens }),
    });
    client.on('error', (e) => errors.push(e));
    return { c: client, errors };
  }

  it('renews at 80 % of a short lifetime, and again with each new token, on the same connection', async () => {
    const rest = scriptedRest(['ok'], 1_000);
    const seen: SessionTokens[] = [];
    const { c } = start(rest, 1_000, (t) => seen.push(t));
    await c.connect();
    await until(() => c.stats().renewals >= 2);
    expect(ScriptedSocket.instances).toHaveLength(1);
    expect(ScriptedSocket.instances[0]!.reauths).toEqual(rest.issued.slice(0, ScriptedSocket.instances[0]!.reauths.length));
    expect(seen.map((t) => t.token)).toEqual(rest.issued);
  });

  it('a refresh that fails for now is retried with back-off, then sent in a Reauthenticate', async () => {
    const rest = scriptedRest([503, 503, 'ok'], 60_000);
    const { c, errors } = start(rest, 1_000);
    await c.connect();
    await until(() => c.stats().renewals === 1);
    expect(rest.calls()).toBe(3);
    expect(errors).toHaveLength(2); // each failed refresh is reported
    expect(ScriptedSocket.instances).toHaveLength(1);
    expect(ScriptedSocket.instances[0]!.reauths).toEqual([rest.issued[0]]);
  });

  it('a retryable Error to Reauthenticate: the same token again after retry_after_ms, no second refresh', async () => {
    ScriptedSocket.answer = (_frame, n) =>
      n === 1 ? { case: 'error', value: { code: ErrorCode.INTERNAL, message: 'down', retryable: true, reason: 'dependency_unavailable', retryAfterMs: 30 } } : { case: 'ok', value: {} };
    const rest = scriptedRest(['ok'], 60_000);
    const { c } = start(rest, 1_000);
    await c.connect();
    await until(() => c.stats().renewals === 1);
    expect(rest.calls()).toBe(1);
    expect(ScriptedSocket.instances[0]!.reauths).toEqual([rest.issued[0], rest.issued[0]]);
  });

  it('a server without Reauthenticate (UNKNOWN_FRAME): no retry, nothing reported; the expiry and a reconnect take over', async () => {
    ScriptedSocket.answer = () => ({ case: 'error', value: { code: ErrorCode.UNKNOWN_FRAME, message: 'unknown frame', retryable: false, reason: '', retryAfterMs: 0 } });
    const rest = scriptedRest(['ok'], 60_000);
    const { c, errors } = start(rest, 1_000);
    await c.connect();
    await until(() => ScriptedSocket.instances[0]!.reauths.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(ScriptedSocket.instances[0]!.reauths).toHaveLength(1);
    expect(c.stats().renewals).toBe(0);
    expect(errors).toEqual([]);
  });

  it('a refresh token refused for good: no Reauthenticate, no retry (the close at the expiry decides, as before)', async () => {
    const rest = scriptedRest([401], 60_000);
    const { c } = start(rest, 1_000);
    await c.connect();
    await until(() => rest.calls() === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(rest.calls()).toBe(1);
    expect(ScriptedSocket.instances[0]!.reauths).toEqual([]);
  });
});

describe('token keeper: when to renew in band', () => {
  it('takes the earlier of the JWT exp (whole seconds, server clock) and expires_in from the reply, then renews at the later of 60 s before and 80 %', async () => {
    const now = 1_000_000_000_000;
    // Issued late in a second (iat counts whole seconds): its exp is 3 s away on arrival, though expires_in says 4.
    const iat = Math.floor(now / 1000) - 0.9;
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64({ alg: 'HS256' })}.${b64({ sub: 'u1', iat: Math.floor(iat), exp: Math.floor(iat) + 4 })}.c2ln`;
    const fetchImpl: FetchLike = async () => ({ ok: true, status: 200, json: async () => ({ user_id: 'u1', token, refresh_token: 'r1', expires_in: 4 }), text: async () => '' });
    const keeper = createTokenKeeper({ rest: restClient('http://fake', fetchImpl), token: null, refreshToken: 'r0', credentials: null, clock: () => now });
    expect(await keeper.refresh()).toBe(token);
    const expiry = (Math.floor(iat) + 4) * 1000;
    expect(keeper.timesOf(token)).toEqual({ expiresAtMs: expiry, renewAtMs: expiry - 800 });
    // A server clock 10 s ahead of ours: its exp comes 10 s earlier on ours.
    expect(keeper.timesOf(token, 10_000)).toEqual({ expiresAtMs: expiry - 10_000, renewAtMs: expiry - 10_800 });
    // A 15-minute token of another client's: 60 s before its expiry (later than 80 %).
    const long = `${b64({ alg: 'HS256' })}.${b64({ sub: 'u1', iat: now / 1000, exp: now / 1000 + 900 })}.c2ln`;
    expect(keeper.timesOf(long)).toEqual({ expiresAtMs: now + 900_000, renewAtMs: now + 840_000 });
    expect(keeper.timesOf('not-a-jwt')).toBeNull();
  });
});
