import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, TEST_JWT_SECRET, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { ErrorCode } from '../protocol/index.js';
import { connectClient, openSocket, type TestClient } from './testing/client.js';
import { embeddedGateway } from './testing/embedded-gateway.js';

/**
 * Reauthenticate (PROTOCOL.md, "Renewing the token"): an open connection takes a fresh token of
 * its user and session and lives on past the old token's expiry, without a reconnect; any other
 * token is refused the way Hello would refuse it, and the connection keeps its old expiry. Short
 * tokens (JWT_TTL_SECONDS=4) over the embedded stack and real sockets.
 */
describe('WebSocket Reauthenticate (embedded stack, 4 s tokens)', () => {
  const gateway = embeddedGateway({ JWT_TTL_SECONDS: '4' });
  const { connect } = gateway;

  const claims = (token: string) => decodeJwt(token) as { sub: string; sid: string; ver: number; username: string; iat: number; exp: number };
  const sleepUntil = async (ms: number) => {
    const wait = ms - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
  const refresh = async (user: Registered): Promise<Registered> => {
    const res = await gateway.stack.client.anonymous.post('/api/v1/auth/refresh', { refresh_token: user.refresh_token });
    expect(res.status).toBe(200);
    return { ...user, ...res.body };
  };
  const reauthenticate = (c: TestClient, token: string) => c.request({ case: 'reauthenticate', value: { token } });
  const pong = async (c: TestClient) => (await c.request({ case: 'ping', value: { clientTimeMs: 1 } })).body.case;

  it('a fresh token of the same session: Ok, and the connection outlives the old token (no 4004 at its expiry), then ends at the new one', async () => {
    const alice = await gateway.stack.client.register('re_alice');
    const c = await connect(alice);
    const first = claims(alice.token);
    // A token issued two seconds later expires two seconds later (exp counts whole seconds).
    await sleepUntil((first.iat + 2) * 1000 + 50);
    const renewed = await refresh(alice);
    expect(claims(renewed.token).sid).toBe(first.sid);
    expect(claims(renewed.token).exp).toBeGreaterThanOrEqual(first.exp + 2);
    expect((await reauthenticate(c, renewed.token)).body.case).toBe('ok');

    // The gateway sweeps expiries every second: past the old expiry and a sweep, still open.
    await sleepUntil(first.exp * 1000 + 1_300);
    expect(c.closed).toBeNull();
    expect(await pong(c)).toBe('pong');
    // It still ends, at the new token's expiry (a client that does not renew again gets 4004).
    expect((await c.waitClosed(5_000)).code).toBe(4004);
    expect(Date.now()).toBeGreaterThanOrEqual(claims(renewed.token).exp * 1000);
  }, 20_000);

  it("another user's token: FORBIDDEN user_mismatch, the connection is kept and ends at its old expiry", async () => {
    const carol = await gateway.stack.client.register('re_carol');
    const mallory = await gateway.stack.client.register('re_mallory');
    const c = await connect(carol);
    await sleepUntil((claims(carol.token).iat + 1) * 1000 + 50);
    const theirs = await refresh(mallory);
    const reply = await reauthenticate(c, theirs.token);
    expect(reply.body.case).toBe('error');
    expect(reply.body.value).toMatchObject({ code: ErrorCode.FORBIDDEN, reason: 'user_mismatch', retryable: false });
    expect(await pong(c)).toBe('pong');
    const closed = await c.waitClosed(8_000);
    expect(closed.code).toBe(4004);
    // Closed by the old expiry's sweep, not the other token's later one.
    expect(Date.now()).toBeLessThan(claims(theirs.token).exp * 1000);
  }, 20_000);

  it('an expired token, a revoked session, another live session of the user, a disabled account, no token: the error Hello would give (or session_mismatch); the connection stays', async () => {
    const dave = await gateway.stack.client.register('re_dave');
    const c = await connect(dave);
    const mine = claims(dave.token);
    const secret = new TextEncoder().encode(TEST_JWT_SECRET);
    const expired = await new SignJWT({ username: mine.username, sid: mine.sid, ver: mine.ver })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(mine.sub)
      .setIssuedAt(mine.iat - 60)
      .setExpirationTime(mine.iat - 30)
      .sign(secret);
    expect((await reauthenticate(c, expired)).body.value).toMatchObject({ code: ErrorCode.UNAUTHENTICATED, reason: 'token_expired', retryable: false });
    expect(await pong(c)).toBe('pong');

    // A second login of dave (another session), then that session revoked.
    const login = async () => (await gateway.stack.client.anonymous.post('/api/v1/auth/login', { username: dave.username, password: 'correct horse battery' })).body as Registered;
    const phone = await login();
    expect((await reauthenticate(c, phone.token)).body.value).toMatchObject({ code: ErrorCode.FORBIDDEN, reason: 'session_mismatch', retryable: false });
    expect(await gateway.stack.sessions.revoke(dave.user_id, claims(phone.token).sid, 'logout')).toBe(true);
    expect((await reauthenticate(c, phone.token)).body.value).toMatchObject({ code: ErrorCode.UNAUTHENTICATED, reason: 'session_revoked', retryable: false });
    expect((await reauthenticate(c, '')).body.value).toMatchObject({ code: ErrorCode.UNAUTHENTICATED, reason: 'unauthenticated' });
    expect((await reauthenticate(c, 'not.a.jwt')).body.value).toMatchObject({ code: ErrorCode.UNAUTHENTICATED, reason: 'unauthenticated' });
    expect(await pong(c)).toBe('pong');
    expect(c.closed).toBeNull();

    const erin = await gateway.stack.client.register('re_erin');
    const e = await connect(erin);
    await gateway.stack.users.setDisabled(erin.user_id, true);
    expect((await reauthenticate(e, erin.token)).body.value).toMatchObject({ code: ErrorCode.FORBIDDEN, reason: 'account_disabled', retryable: false });
  }, 20_000);

  it('before Hello: refused like any other frame before Hello (NOT_AUTHENTICATED, close 4101)', async () => {
    const frank = await gateway.stack.client.register('re_frank');
    const socket = await openSocket(gateway.url);
    const reply = await socket.request({ case: 'reauthenticate', value: { token: frank.token } });
    expect(reply.body.value).toMatchObject({ code: ErrorCode.NOT_AUTHENTICATED });
    expect((await socket.waitClosed()).code).toBe(4101);
  });
});

describe('WebSocket Reauthenticate while the database is down', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite');
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('answers a retryable INTERNAL dependency_unavailable and keeps the connection', async () => {
    const url = `ws://127.0.0.1:${await stack.listenRealtime('127.0.0.1', 0)}/ws`;
    const a = await stack.client.register('re_outage');
    const c = await connectClient(url, { token: a.token });
    await stack.databases[0]!.close();
    const reply = await c.request({ case: 'reauthenticate', value: { token: a.token } });
    expect(reply.body.value).toMatchObject({ code: ErrorCode.INTERNAL, retryable: true, reason: 'dependency_unavailable' });
    expect((await c.request({ case: 'ping', value: { clientTimeMs: 1 } })).body.case).toBe('pong');
    expect(c.closed).toBeNull();
    c.close();
  });
});

describe('WebSocket Reauthenticate and the frame rate limit', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { WS_RATE_LIMIT: '1' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('counts against the connection’s request frames: past the burst it is answered RATE_LIMITED and not checked', async () => {
    const url = `ws://127.0.0.1:${await stack.listenRealtime('127.0.0.1', 0)}/ws`;
    const a = await stack.client.register('re_rate');
    const c = await connectClient(url, { token: a.token });
    // 1 frame per second, bursts of 2: the third at once is refused.
    const replies = await Promise.all([1, 2, 3].map(() => c.request({ case: 'reauthenticate', value: { token: a.token } })));
    expect(replies.map((r) => r.body.case)).toEqual(['ok', 'ok', 'error']);
    expect(replies[2]!.body.value).toMatchObject({ code: ErrorCode.RATE_LIMITED, reason: 'rate_limited', retryable: true });
    c.close();
  });
});
