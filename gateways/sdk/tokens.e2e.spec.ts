import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { createChatClient, expiryOf, type ChatClient, type ChatClientOptions, type FetchLike, type ReceivedEvent, type SessionTokens } from './index.js';

/**
 * The SDK with short-lived access tokens: an open connection's token is renewed in band
 * (refresh, then Reauthenticate) and the connection never ends; without that (renewInBand: false,
 * or a server without Reauthenticate) the gateway ends a connection with 4004 when its token
 * expires, and the SDK renews the token with the session's refresh token (not by logging in again)
 * and reconnects. Either way nothing sent meanwhile is lost.
 */
describe('chat client SDK with short-lived tokens (embedded stack)', () => {
  let stack: ApiStack;
  let baseUrl: string;
  const clients: ChatClient[] = [];

  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { JWT_TTL_SECONDS: '6' } });
    baseUrl = await stack.listenAll();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.close();
  });

  /** fetch that counts the REST calls by path. */
  function countingFetch() {
    const calls: string[] = [];
    const impl: FetchLike = async (input, init) => {
      calls.push(new URL(input).pathname);
      return fetch(input, init);
    };
    return { impl, calls, count: (path: string) => calls.filter((c) => c === path).length };
  }

  async function until(probe: () => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  function start(options: Partial<ChatClientOptions> & ({ token: string; refreshToken?: string } | { username: string; password: string })) {
    const c = createChatClient({ baseUrl, deviceId: 'dev', WebSocket, reconnect: { minMs: 50, maxMs: 200 }, ...options } as ChatClientOptions);
    clients.push(c);
    const events: ReceivedEvent[] = [];
    const closes: number[] = [];
    c.on('event', (e) => events.push(e));
    c.on('disconnected', (d) => closes.push(d.code));
    return { c, events, closes, contents: () => events.flatMap((e) => (e.type === 'MessageSent' ? [e.data.content] : [])) };
  }

  /** Alice sends to the conversation over REST every 200 ms until `done()`, refreshing her own token when it expires. */
  async function sendUntil(alice: Registered, conversationId: string, done: () => boolean): Promise<string[]> {
    const sent: string[] = [];
    let i = 0;
    while (!done()) {
      const content = `m${i++}`;
      const res = await stack.client.as(alice).post(`/api/v1/conversations/${conversationId}/messages`, { content, content_type: 'text' });
      if (res.status === 401) {
        Object.assign(alice, (await stack.client.anonymous.post('/api/v1/auth/refresh', { refresh_token: alice.refresh_token })).body);
        i--;
        continue;
      }
      expect(res.status).toBe(201);
      sent.push(content);
      await new Promise((r) => setTimeout(r, 200));
      if (i > 500) throw new Error('never done');
    }
    return sent;
  }

  it('in band: across more than two token lifetimes the connection never ends; each renewal is a refresh and a Reauthenticate, reported to onTokens', async () => {
    const alice: Registered = await stack.client.register('inband_alice');
    const bob: Registered = await stack.client.register('inband_bob');
    const conversationId = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    const rest = countingFetch();
    const seen: SessionTokens[] = [];
    const b = start({ token: bob.token, refreshToken: bob.refresh_token!, fetch: rest.impl, onTokens: (t) => seen.push(t) });
    const disconnected: unknown[] = [];
    b.c.on('disconnected', (d) => disconnected.push(d));
    await b.c.connect();
    b.c.track(conversationId, 0);
    const firstExpiry = expiryOf(bob.token)!;

    // Three lifetimes of 6 s: the first token's and two renewed ones'. (6 s, not less: the SDK renews at
    // 80 % of a lifetime, and a loaded CI machine needs the 1.2 s left for a refresh and a Reauthenticate.)
    const sent = await sendUntil(alice, conversationId, () => Date.now() > firstExpiry + 12_500);
    await until(() => b.contents().length === sent.length, 20_000, 'every message at bob');
    expect(b.contents()).toEqual(sent);
    expect(disconnected).toEqual([]);
    expect(b.closes).toEqual([]);
    expect(b.c.state).toBe('open');
    expect(b.c.stats().reconnects).toBe(0);
    expect(b.c.stats().renewals).toBeGreaterThanOrEqual(2);
    // Each renewal: one refresh, one new pair for the application, each pair new.
    expect(rest.count('/api/v1/auth/refresh')).toBe(b.c.stats().renewals);
    expect(seen.length).toBe(b.c.stats().renewals);
    expect(new Set(seen.map((t) => t.token)).size).toBe(seen.length);
    expect(new Set(seen.map((t) => t.refreshToken)).size).toBe(seen.length);
    expect(seen.every((t) => t.expiresAtMs !== null && t.expiresAtMs > firstExpiry)).toBe(true);
    expect(rest.count('/api/v1/auth/login')).toBe(0);
  }, 60_000);

  it('in band with username and password: logs in once, then only refreshes; no reconnect', async () => {
    const erin: Registered = await stack.client.register('inband_erin');
    const rest = countingFetch();
    const e = start({ username: erin.username, password: 'correct horse battery', fetch: rest.impl });
    await e.c.connect();
    await until(() => e.c.stats().renewals >= 2, 30_000, 'two renewals');
    expect(e.closes).toEqual([]);
    expect(rest.count('/api/v1/auth/login')).toBe(1);
    expect(rest.count('/api/v1/auth/refresh')).toBe(e.c.stats().renewals);
  }, 45_000);

  it('only a token, no refresh token: no renewal; the connection ends at its expiry (4004)', async () => {
    const frank: Registered = await stack.client.register('inband_frank');
    const rest = countingFetch();
    const f = start({ token: frank.token, fetch: rest.impl });
    await f.c.connect();
    await until(() => f.closes.includes(4004), 15_000, 'the close at the expiry');
    expect(f.c.stats().renewals).toBe(0);
    expect(rest.count('/api/v1/auth/refresh')).toBe(0);
  }, 25_000);

  it('without in-band renewal, username and password: logs in once, then renews with the refresh token across token expiries, losing nothing', async () => {
    const alice: Registered = await stack.client.register('tok_alice');
    const bob: Registered = await stack.client.register('tok_bob');
    const conversationId = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    const rest = countingFetch();
    const b = start({ username: bob.username, password: 'correct horse battery', fetch: rest.impl, renewInBand: false });
    await b.c.connect();
    b.c.track(conversationId, 0);

    // Alice sends over REST while bob's connections expire and come back (at least two expiries).
    const sent: string[] = [];
    let i = 0;
    while (b.closes.filter((code) => code === 4004).length < 2) {
      const content = `m${i++}`;
      const res = await stack.client.as(alice).post(`/api/v1/conversations/${conversationId}/messages`, { content, content_type: 'text' });
      if (res.status === 401) {
        Object.assign(alice, (await stack.client.anonymous.post('/api/v1/auth/refresh', { refresh_token: alice.refresh_token })).body);
        i--;
        continue;
      }
      expect(res.status).toBe(201);
      sent.push(content);
      await new Promise((r) => setTimeout(r, 200));
      if (i > 500) throw new Error('no token expiry seen');
    }
    await until(() => b.contents().length === sent.length, 20_000, 'every message at bob');
    expect(b.contents()).toEqual(sent);
    // The renewal after a 4004 comes with the reconnect, after its back-off: the last one may still be on its way.
    await until(() => rest.count('/api/v1/auth/refresh') >= 2, 20_000, 'a renewal after each expiry');
    expect(rest.count('/api/v1/auth/login')).toBe(1);
    // Still going: the next expiry may be under way, and it comes back by itself.
    await until(() => b.c.state === 'open', 20_000, 'open again');
    expect(rest.count('/api/v1/auth/login')).toBe(1);
  });

  it('without in-band renewal, token and refresh token: renews after an expiry and reports each new pair to the application', async () => {
    const carol: Registered = await stack.client.register('tok_carol');
    const seen: SessionTokens[] = [];
    const c = start({ token: carol.token, refreshToken: carol.refresh_token!, onTokens: (t) => seen.push(t), renewInBand: false });
    await c.c.connect();
    await until(() => c.closes.includes(4004) && c.c.state === 'open', 20_000, 'an expiry and a reconnect');
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen.at(-1)!.refreshToken).not.toBe(carol.refresh_token);
    expect(seen.at(-1)!.expiresAtMs).toBeGreaterThan(0);
    // The first refresh token was rotated away: presenting it again would revoke the session.
    expect(seen[0]!.refreshToken).toMatch(/^[\w-]{22}\.[\w-]{43}$/);
  });

  it('a session revoked elsewhere stops the client: terminal, no login loop', async () => {
    const dave: Registered = await stack.client.register('tok_dave');
    const rest = countingFetch();
    const d = start({ token: dave.token, refreshToken: dave.refresh_token!, fetch: rest.impl });
    const closed = new Promise<{ code: number; terminal: boolean }>((resolve) => d.c.on('closed', resolve));
    await d.c.connect();
    expect((await stack.client.as(dave).post('/api/v1/auth/logout-all', undefined)).status).toBe(204);
    const end = await closed;
    expect(end.terminal).toBe(true);
    expect(end.code).toBe(4100);
    expect(rest.count('/api/v1/auth/login')).toBe(0);
  });
});
