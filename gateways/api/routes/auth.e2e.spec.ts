import { randomUUID } from 'node:crypto';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, TEST_JWT_SECRET, uniqueName, type ApiStack, type Registered } from '../testing/api-stack.js';

/** Accounts, sessions and tokens through the whole embedded stack, with inject(). */
describe('accounts and sessions API', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    // A failure budget large enough not to interfere; its own suite below.
    stack = await createApiStack('pglite', { env: { AUTH_FAILURE_LIMIT_MAX: '1000000' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  const as = (user: { token: string } | null) => stack.client.as(user);
  const anonymous = () => stack.client.anonymous;
  const inbox = (token: string) => as({ token }).get('/api/v1/conversations');
  const login = (username: string, password = 'correct horse battery') => anonymous().post('/api/v1/auth/login', { username, password });
  const sign = (claims: Record<string, unknown>, subject: string) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(subject).setExpirationTime('10m').sign(new TextEncoder().encode(TEST_JWT_SECRET));

  it('register and login answer an access token, a refresh token and its lifetime (15 minutes by default)', async () => {
    const a = await stack.client.register('sess_a');
    expect(a).toEqual({ user_id: expect.any(String), username: a.username, token: expect.any(String), refresh_token: expect.stringMatching(/^[\w-]{22}\.[\w-]{43}$/), expires_in: 900 });
    const claims = decodeJwt(a.token);
    expect(claims).toMatchObject({ sub: a.user_id, sid: expect.stringMatching(/^[0-9a-f-]{36}$/), ver: 0 });
    expect(claims.exp! - claims.iat!).toBe(900);
    const again = await login(a.username);
    expect(again.status).toBe(200);
    expect(decodeJwt(again.body.token).sid).not.toBe(claims.sid); // a second login is a second session
    expect((await inbox(a.token)).status).toBe(200);
    expect((await inbox(again.body.token)).status).toBe(200);
  });

  it('refuses a validly signed token of a user that does not exist, or of a session that does not exist', async () => {
    const real = await stack.client.register('sess_real');
    const ghost = randomUUID();
    const token = await sign({ username: 'ghost', sid: randomUUID(), ver: 0 }, ghost);
    const res = await inbox(token);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
    // ...and cannot open a conversation with a real user.
    expect((await as({ token }).post('/api/v1/conversations', { participant_id: real.user_id })).status).toBe(401);
    const noSession = await sign({ username: real.username, sid: randomUUID(), ver: 0 }, real.user_id);
    expect((await inbox(noSession)).status).toBe(401);
    // Tokens of before sessions (no sid) are refused too.
    expect((await inbox(await sign({ username: real.username }, real.user_id))).status).toBe(401);
  });

  it('refresh rotates the refresh token; presenting a rotated one revokes the session', async () => {
    const a = await stack.client.register('sess_refresh');
    const first = await anonymous().post('/api/v1/auth/refresh', { refresh_token: a.refresh_token });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ user_id: a.user_id, username: a.username, expires_in: 900 });
    expect(first.body.refresh_token).not.toBe(a.refresh_token);
    expect(decodeJwt(first.body.token).sid).toBe(decodeJwt(a.token).sid);
    expect((await inbox(first.body.token)).status).toBe(200);

    const reused = await anonymous().post('/api/v1/auth/refresh', { refresh_token: a.refresh_token });
    expect(reused.status).toBe(401);
    expect(reused.body.error.code).toBe('invalid_refresh_token');
    // The whole session ends: its access tokens and its newest refresh token too.
    expect((await inbox(first.body.token)).status).toBe(401);
    expect((await anonymous().post('/api/v1/auth/refresh', { refresh_token: first.body.refresh_token })).status).toBe(401);
    expect((await anonymous().post('/api/v1/auth/refresh', { refresh_token: 'garbage' })).body.error.code).toBe('invalid_refresh_token');
    expect((await anonymous().post('/api/v1/auth/refresh', {})).status).toBe(400);
  });

  it('logout ends this session only; logout-all ends every session of the user', async () => {
    const a = await stack.client.register('sess_logout');
    const phone = (await login(a.username)).body;
    const laptop = (await login(a.username)).body;

    const out = await as(a).post('/api/v1/auth/logout', undefined);
    expect(out.status).toBe(204);
    expect((await inbox(a.token)).status).toBe(401);
    expect((await inbox(a.token)).body.error.message).toMatch(/session .* has ended/);
    expect((await anonymous().post('/api/v1/auth/refresh', { refresh_token: a.refresh_token })).status).toBe(401);
    expect((await inbox(phone.token)).status).toBe(200);

    expect((await as(phone).post('/api/v1/auth/logout-all', undefined)).status).toBe(204);
    expect((await inbox(phone.token)).status).toBe(401);
    expect((await inbox(laptop.token)).status).toBe(401);
    expect((await anonymous().post('/api/v1/auth/refresh', { refresh_token: laptop.refresh_token })).status).toBe(401);
    // Logging in again works.
    const back = await login(a.username);
    expect(back.status).toBe(200);
    expect(decodeJwt(back.body.token).ver).toBe(1);
    expect((await inbox(back.body.token)).status).toBe(200);
    expect((await anonymous().post('/api/v1/auth/logout', undefined)).status).toBe(401);
  });

  it('a password change checks the current password and the policy, ends every other session, and keeps this one', async () => {
    const a = await stack.client.register('sess_pw');
    const other = (await login(a.username)).body;
    const change = (token: string, body: unknown) => as({ token }).post('/api/v1/auth/password', body);

    const wrong = await change(a.token, { current_password: 'not my password', new_password: 'a brand new passphrase' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toEqual({ code: 'wrong_password', message: 'current_password: not your current password' });
    const weak = await change(a.token, { current_password: 'correct horse battery', new_password: 'short' });
    expect(weak.status).toBe(400);
    expect(weak.body.error.message).toMatch(/^new_password: must be at least 15 characters/);
    expect((await change(a.token, { current_password: 'correct horse battery', new_password: a.username })).body.error.message).toMatch(/^new_password: /);

    const done = await change(a.token, { current_password: 'correct horse battery', new_password: 'a brand new passphrase' });
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ user_id: a.user_id, username: a.username, token: expect.any(String), expires_in: 900 });
    expect((await inbox(done.body.token)).status).toBe(200);
    expect((await inbox(a.token)).status).toBe(401); // issued under the old token version
    expect((await inbox(other.token)).status).toBe(401);
    expect((await anonymous().post('/api/v1/auth/refresh', { refresh_token: other.refresh_token })).status).toBe(401);
    // This session's refresh token still works, and issues tokens of the new version.
    const refreshed = await anonymous().post('/api/v1/auth/refresh', { refresh_token: a.refresh_token });
    expect(refreshed.status).toBe(200);
    expect((await inbox(refreshed.body.token)).status).toBe(200);
    expect((await login(a.username)).status).toBe(401);
    expect((await login(a.username, 'a brand new passphrase')).status).toBe(200);
  });

  it('throttles logins per account: after 5 failures even the right password gets 429 login_throttled with Retry-After', async () => {
    const a = await stack.client.register('sess_throttle');
    for (let i = 0; i < 5; i++) expect((await login(a.username, `wrong password ${i}`)).status).toBe(401);
    const right = await login(a.username);
    expect(right.status).toBe(429);
    expect(right.body.error.code).toBe('login_throttled');
    const retryAfter = Number(right.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(30);
    // By email too: the throttle is the account's, not the login string's.
    expect((await anonymous().post('/api/v1/auth/login', { email: `${a.username}@example.test`, password: 'correct horse battery' })).status).toBe(429);
    // Another account is not affected.
    const b = await stack.client.register('sess_throttle_b');
    expect((await login(b.username)).status).toBe(200);

    // Once the lock is over, the right password works and clears the count.
    await stack.databases[0]!.query("UPDATE login_throttle SET locked_until = now() - interval '1 second'");
    expect((await login(a.username)).status).toBe(200);
    expect((await login(a.username, 'wrong again')).status).toBe(401);
    expect((await login(a.username)).status).toBe(200);
  });

  it('unknown accounts are answered like wrong passwords, never throttled per account', async () => {
    const name = uniqueName('nobody');
    for (let i = 0; i < 8; i++) {
      const res = await login(name, `guess number ${i}`);
      expect(res.status).toBe(401);
      expect(res.body.error).toEqual({ code: 'invalid_credentials', message: 'unknown username or email, or wrong password' });
    }
  });

  it('refuses weak passwords at registration with 400 naming the field', async () => {
    const register = (password: string, username = uniqueName('weak')) =>
      anonymous().post('/api/v1/auth/register', { username, email: `${username}@example.test`, password });
    const eightSpaces = await register('        ');
    expect(eightSpaces.status).toBe(400);
    expect(eightSpaces.body.error).toEqual({ code: 'validation_error', message: 'password: must be at least 15 characters long (a few words make a good one)' });
    expect((await register(' '.repeat(20))).body.error.message).toBe('password: must not be only spaces');
    expect((await register('password')).body.error.message).toMatch(/^password: must be at least 15/);
    expect((await register('passwordpassword')).body.error.message).toBe('password: is one of the most commonly used passwords; choose another');
    expect((await register('x'.repeat(20))).body.error.message).toMatch(/^password: must use at least 4 different characters/);
    const name = uniqueName('samepw_long_name');
    expect((await register(name, name)).body.error.message).toBe('password: must not be your username or e-mail address');
    expect((await register('violet tram 47 lagoon')).status).toBe(201);
  });

  it('a disabled account gets 403 for its tokens, its refresh token and its right password', async () => {
    const a = await stack.client.register('sess_disabled');
    expect(await stack.accounts.setDisabled(a.user_id, true)).toBe(true);
    const res = await inbox(a.token);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('account_disabled');
    expect((await anonymous().post('/api/v1/auth/refresh', { refresh_token: a.refresh_token })).status).toBe(401);
    expect((await login(a.username)).body.error.code).toBe('account_disabled');
    expect((await login(a.username, 'wrong password here')).body.error.code).toBe('invalid_credentials');
    await stack.accounts.setDisabled(a.user_id, false);
    expect((await login(a.username)).status).toBe(200);
  });

  it('device tokens never move between users silently: 409 while the holder is logged in, free once that session logs out', async () => {
    const carol = await stack.client.register('dev_carol');
    const dave = await stack.client.register('dev_dave');
    const register = (user: Registered) => as(user).post('/api/v1/devices', { platform: 'android', token: 'shared-phone-token' });
    expect((await register(carol)).status).toBe(201);
    const taken = await register(dave);
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('device_token_taken');
    expect((await as(carol).get('/api/v1/devices')).body.devices).toHaveLength(1);
    expect((await as(dave).get('/api/v1/devices')).body.devices).toEqual([]);

    // Carol logs out on the phone: the token is released and dave may take it.
    expect((await as(carol).post('/api/v1/auth/logout', undefined)).status).toBe(204);
    expect((await register(dave)).status).toBe(201);
    expect((await as(dave).get('/api/v1/devices')).body.devices.map((d: { token: string }) => d.token)).toEqual(['shared-phone-token']);
    // Dave changes his password from another session: the phone's session ends, its token is released.
    const other = (await login(dave.username)).body;
    expect((await as(other).post('/api/v1/auth/password', { current_password: 'correct horse battery', new_password: 'dave new long password' })).status).toBe(200);
    const renewed = (await login(dave.username, 'dave new long password')).body;
    expect((await as(renewed).get('/api/v1/devices')).body.devices).toEqual([]);
  });
});

describe('rate limits on unauthenticated and failed requests', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { RATE_LIMIT_MAX: '6', AUTH_FAILURE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('requests with a missing or expired token count against the address: 429 with Retry-After', async () => {
    // inject() comes from 127.0.0.1: each request below counts against that one address.
    const expired = await new SignJWT({ username: 'x', sid: randomUUID(), ver: 0 })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(randomUUID())
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await stack.client.anonymous.get('/api/v1/conversations')).status);
    for (let i = 0; i < 3; i++) statuses.push((await stack.client.as({ token: expired }).get('/api/v1/conversations')).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 429]);
    const limited = await stack.client.anonymous.get('/api/v1/conversations');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('requests that hash a password have a budget of their own (AUTH_RATE_LIMIT_MAX)', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { AUTH_RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW_MS: '60000' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('registrations and logins from one address: at most AUTH_RATE_LIMIT_MAX a window, right password or not; other requests go on', async () => {
    const a = await stack.client.register('hash_a');
    const b = await stack.client.register('hash_b');
    const login = (user: Registered) => stack.client.anonymous.post('/api/v1/auth/login', { username: user.username, password: 'correct horse battery' });
    expect((await login(a)).status).toBe(200);
    expect((await login(b)).status).toBe(200);
    const refused = await login(a);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    const registration = await stack.client.anonymous.post('/api/v1/auth/register', { username: 'hash_c', email: 'hash_c@example.test', password: 'correct horse battery' });
    expect(registration.status).toBe(429);
    // Everything else counts against the general budget, untouched.
    expect((await stack.client.as(a).get('/api/v1/conversations')).status).toBe(200);
    expect((await stack.client.anonymous.post('/api/v1/auth/refresh', { refresh_token: a.refresh_token })).status).toBe(200);
  });
});

describe('per-address limits behind trusted reverse proxies (TRUSTED_PROXIES)', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000', TRUSTED_PROXIES: '10.0.0.0/24' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  const anonymousFrom = async (remoteAddress: string, forwardedFor?: string) =>
    (await stack.app.inject({ method: 'GET', url: '/api/v1/conversations', remoteAddress, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } })).statusCode;

  it('counts each client a trusted proxy names apart, and a client cannot choose its address by writing the header itself', async () => {
    // Two clients behind the proxy 10.0.0.5: each has its own budget of 3.
    const first: number[] = [];
    for (let i = 0; i < 4; i++) first.push(await anonymousFrom('10.0.0.5', '198.51.100.1'));
    expect(first).toEqual([401, 401, 401, 429]);
    expect(await anonymousFrom('10.0.0.5', '198.51.100.2')).toBe(401);
    // What the client wrote left of the proxy's entry proves nothing: still 198.51.100.1.
    expect(await anonymousFrom('10.0.0.5', '203.0.113.9, 198.51.100.1')).toBe(429);
    // A peer that is not a trusted proxy is the client, whatever X-Forwarded-For it sends.
    const direct: number[] = [];
    for (let i = 0; i < 4; i++) direct.push(await anonymousFrom('192.0.2.7', `203.0.113.${i}`));
    expect(direct).toEqual([401, 401, 401, 429]);
  });
});

describe('the failure budget of an address', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { AUTH_FAILURE_LIMIT_MAX: '3' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('failed logins and forged tokens use it up; then even a right password from that address gets 429', async () => {
    const a = await stack.client.register('budget');
    const b = await stack.client.register('budget_b');
    for (let i = 0; i < 2; i++) expect((await stack.client.anonymous.post('/api/v1/auth/login', { username: a.username, password: `wrong ${i} password` })).status).toBe(401);
    const forged = `${a.token.slice(0, -4)}AAAA`;
    expect((await stack.client.as({ token: forged }).get('/api/v1/conversations')).status).toBe(401);
    const refused = await stack.client.anonymous.post('/api/v1/auth/login', { username: b.username, password: 'correct horse battery' });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect((await stack.client.as({ token: forged }).get('/api/v1/conversations')).status).toBe(429);
    // Valid tokens from the same address are not affected.
    expect((await stack.client.as(b).get('/api/v1/conversations')).status).toBe(200);
  });
});
