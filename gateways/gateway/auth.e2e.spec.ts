import { randomUUID } from 'node:crypto';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, TEST_JWT_SECRET, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { ErrorCode } from '../protocol/index.js';
import { openSocket } from './testing/client.js';
import { embeddedGateway } from './testing/embedded-gateway.js';

/**
 * Hello checks the token like the REST API (account, token version, live session), and open
 * connections whose session ends are closed, over the embedded stack and real sockets.
 */
describe('WebSocket authentication and session ends (embedded stack)', () => {
  const gateway = embeddedGateway({ SESSION_CHECK_INTERVAL_MS: '200' });
  const { connect } = gateway;

  async function helloRefused(token: string) {
    const socket = await openSocket(gateway.url);
    const reply = await socket.request({ case: 'hello', value: { token, protocolVersion: 1, deviceId: 'd', cursors: [] } });
    return { error: reply.body.case === 'error' ? reply.body.value : null, closed: await socket.waitClosed() };
  }

  const sign = (claims: Record<string, unknown>, subject: string) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(subject).setExpirationTime('10m').sign(new TextEncoder().encode(TEST_JWT_SECRET));

  it('refuses a validly signed token of a user that does not exist, or of a session that does not exist: 4100', async () => {
    const real = await gateway.stack.client.register('ws_real');
    for (const token of [await sign({ username: 'ghost', sid: randomUUID(), ver: 0 }, randomUUID()), await sign({ username: real.username, sid: randomUUID(), ver: 0 }, real.user_id)]) {
      const { error, closed } = await helloRefused(token);
      expect(error).toMatchObject({ code: ErrorCode.UNAUTHENTICATED, retryable: false });
      expect(closed.code).toBe(4100);
    }
    expect((await connect(real)).welcome.userId).toBe(real.user_id);
  });

  it('closes the connections of a revoked session with 4100 within the check interval; other sessions stay', async () => {
    const a = await gateway.stack.client.register('ws_revoked');
    const phone = (await gateway.stack.client.anonymous.post('/api/v1/auth/login', { username: a.username, password: 'correct horse battery' })).body as Registered;
    const laptop = await connect(a);
    const other = await connect(phone);
    // Revoked in the database directly, as another API process would: only the periodic check can see it.
    const sid = String(decodeJwt(a.token).sid);
    expect(await gateway.stack.sessions.revoke(a.user_id, sid, 'logout')).toBe(true);
    const goodbye = await laptop.waitFor('goodbye', () => true, 10_000);
    expect(goodbye).toMatchObject({ closeCode: 4100, reason: 'session_revoked' });
    expect((await laptop.waitClosed()).code).toBe(4100);
    expect((await other.request({ case: 'ping', value: { clientTimeMs: 1 } })).body.case).toBe('pong');
    // A new Hello with the revoked session's token is refused.
    expect((await helloRefused(a.token)).closed.code).toBe(4100);
  });

  it('logout-all and a password change through REST close the connections they end', async () => {
    const a = await gateway.stack.client.register('ws_logout_all');
    const first = await connect(a);
    const second = await connect(a);
    expect((await gateway.stack.client.as(a).post('/api/v1/auth/logout-all', undefined)).status).toBe(204);
    expect((await first.waitClosed(10_000)).code).toBe(4100);
    expect((await second.waitClosed(10_000)).code).toBe(4100);

    const b = await gateway.stack.client.register('ws_password');
    const elsewhere = (await gateway.stack.client.anonymous.post('/api/v1/auth/login', { username: b.username, password: 'correct horse battery' })).body as Registered;
    const mine = await connect(b);
    const theirs = await connect(elsewhere);
    const changed = await gateway.stack.client.as(b).post('/api/v1/auth/password', { current_password: 'correct horse battery', new_password: 'a different passphrase' });
    expect(changed.status).toBe(200);
    expect((await theirs.waitClosed(10_000)).code).toBe(4100);
    // This session's connection carries the old token version: it ends too, and the new token connects.
    expect((await mine.waitClosed(10_000)).code).toBe(4100);
    expect((await connect(changed.body)).welcome.userId).toBe(b.user_id);
  });

  it('a disabled account: open connections are closed with 4103 FORBIDDEN, and Hello is refused with it', async () => {
    const a = await gateway.stack.client.register('ws_disabled');
    const c = await connect(a);
    await gateway.stack.users.setDisabled(a.user_id, true); // as an operator would, from another process
    expect(await c.waitFor('goodbye', () => true, 10_000)).toMatchObject({ closeCode: 4103, reason: 'account_disabled' });
    expect((await c.waitClosed()).code).toBe(4103);
    const { error, closed } = await helloRefused(a.token);
    expect(error).toMatchObject({ code: ErrorCode.FORBIDDEN, reason: 'account_disabled' });
    expect(closed.code).toBe(4103);
  });
});

describe('WebSocket Hello while the database is down', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite');
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('answers a retryable INTERNAL error and closes with 4002 (reconnect), never UNAUTHENTICATED', async () => {
    const url = `ws://127.0.0.1:${await stack.listenRealtime('127.0.0.1', 0)}/ws`;
    const a = await stack.client.register('ws_outage');
    await stack.databases[0]!.close();
    const socket = await openSocket(url);
    const reply = await socket.request({ case: 'hello', value: { token: a.token, protocolVersion: 1, deviceId: 'd', cursors: [] } });
    expect(reply.body.value).toMatchObject({ code: ErrorCode.INTERNAL, retryable: true, reason: 'dependency_unavailable' });
    expect((await socket.waitClosed()).code).toBe(4002);
  });
});
