import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../infra/bus/memory.js';
import { createMemoryPresenceStore } from '../../infra/presence/memory.js';
import type { ConnectionCapsOptions } from './connection-caps.js';
import { createWsGateway, type WsGateway } from './gateway.js';
import { PROTOCOL_VERSION } from '../protocol/index.js';
import { connectClient, openSocket, type TestClient } from './testing/client.js';

/**
 * Connection caps at the door of a gateway node (PROTOCOL.md "Limits"), over real sockets, with
 * the rest of the node stubbed: per user, per client address, per address before the handshake,
 * and the client address behind trusted reverse proxies. Over a cap: Goodbye TOO_MANY_CONNECTIONS
 * (4007) with reconnect_after_ms, then the close with 4007.
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
const commands = { sendMessage: unused, markWatermark: unused, access: unused, otherMembers: unused, screen: unused };

describe('gateway connection caps', () => {
  const bus = createMemoryBus();
  const presence = createMemoryPresenceStore();
  const gateways: WsGateway[] = [];
  const clients: TestClient[] = [];

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const g of gateways) await g.close();
    await bus.close();
    await presence.close();
  });

  async function gateway(caps: ConnectionCapsOptions, trustedProxies: string[] = [], hellosPerMinute?: number): Promise<{ url: string; node: WsGateway }> {
    const node = createWsGateway({
      nodeId: `node-caps-${gateways.length}`,
      tokens,
      commands,
      store: { readStream: async () => [] },
      queries: { contacts: async () => [] },
      presence,
      bus,
      logger,
      caps,
      trustedProxies,
      ...(hellosPerMinute === undefined ? {} : { hellosPerMinute }),
    });
    gateways.push(node);
    return { url: `ws://127.0.0.1:${await node.listen('127.0.0.1', 0)}/ws`, node };
  }

  const track = <T extends TestClient>(c: T): T => {
    clients.push(c);
    return c;
  };
  const connect = async (url: string, user: string, headers?: Record<string, string>) =>
    track(await connectClient(url, { token: `user:${user}`, ...(headers === undefined ? {} : { headers }) }));
  const socket = async (url: string, headers?: Record<string, string>) => track(await openSocket(url, headers === undefined ? {} : { headers }));
  const hello = (c: TestClient, user: string) =>
    c.request({ case: 'hello', value: { token: `user:${user}`, protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [] } });

  /** The connection was refused at the door: Goodbye 4007 with a reconnect delay, then the close. */
  async function expectRefused(c: TestClient, reconnectAfterMs: number) {
    const goodbye = await c.waitFor('goodbye');
    expect(goodbye).toMatchObject({ closeCode: 4007, reason: 'too_many_connections', reconnectAfterMs });
    expect((await c.waitClosed()).code).toBe(4007);
  }

  it('refuses a user more connections than the cap with 4007, and takes one again once one closed', async () => {
    const { url, node } = await gateway({ perUser: 2, perAddress: 0, unauthenticatedPerAddress: 0 });
    const first = await connect(url, 'capped');
    await connect(url, 'capped');
    const third = await socket(url);
    void hello(third, 'capped').catch(() => {});
    await expectRefused(third, 10_000);
    expect(third.frames.some((f) => f.body.case === 'welcome')).toBe(false);
    // Another user is not affected; the capped user is again once a connection closed.
    await connect(url, 'someone_else');
    first.close();
    await first.waitClosed();
    await expect.poll(() => node.stats().authenticated).toBe(2);
    const again = await connect(url, 'capped');
    expect(again.welcome.userId).toBe('capped');
  });

  it('refuses a user in a reconnect loop once its handshakes per minute are spent (4007 too_many_handshakes), and no one else', async () => {
    const { url } = await gateway({ perUser: 0, perAddress: 0, unauthenticatedPerAddress: 0 }, [], 3);
    for (let i = 0; i < 3; i++) {
      const c = await connect(url, 'looper');
      c.close();
      await c.waitClosed();
    }
    const refused = await socket(url);
    void hello(refused, 'looper').catch(() => {});
    const goodbye = await refused.waitFor('goodbye');
    expect(goodbye).toMatchObject({ closeCode: 4007, reason: 'too_many_handshakes' });
    // Three a minute: the next one is allowed within 20 s.
    expect(goodbye.reconnectAfterMs).toBeGreaterThan(0);
    expect(goodbye.reconnectAfterMs).toBeLessThanOrEqual(20_000);
    expect((await refused.waitClosed()).code).toBe(4007);
    expect(refused.frames.some((f) => f.body.case === 'welcome')).toBe(false);
    // Another user (from the same address) is not affected.
    expect((await connect(url, 'not_looping')).welcome.userId).toBe('not_looping');
  });

  it('refuses an address more connections waiting for their handshake than the cap, and counts a connection apart once it said Hello', async () => {
    const { url } = await gateway({ perUser: 0, perAddress: 0, unauthenticatedPerAddress: 2 });
    const a = await socket(url);
    const b = await socket(url);
    await expectRefused(await socket(url), 1_000);
    // Once one of them completed its handshake, one more may start its own.
    expect((await hello(a, 'handshaker')).body.case).toBe('welcome');
    const c = await socket(url);
    expect((await hello(c, 'handshaker_2')).body.case).toBe('welcome');
    expect(b.closed).toBeNull();
  });

  it('refuses an address more connections than the cap, authenticated or not', async () => {
    const { url, node } = await gateway({ perUser: 0, perAddress: 3, unauthenticatedPerAddress: 0 });
    await connect(url, 'addr_1');
    await connect(url, 'addr_2');
    const waiting = await socket(url);
    await expectRefused(await socket(url), 10_000);
    waiting.close();
    await waiting.waitClosed();
    await expect.poll(() => node.stats().connections).toBe(2);
    await connect(url, 'addr_3');
  });

  it('ignores X-Forwarded-For unless the peer is a trusted proxy; behind one, counts the client it names', async () => {
    const caps = { perUser: 0, perAddress: 1, unauthenticatedPerAddress: 0 };
    // Not trusted: every connection is the peer's (127.0.0.1), whatever it claims.
    const direct = await gateway(caps);
    await connect(direct.url, 'xff_1', { 'x-forwarded-for': '203.0.113.1' });
    await expectRefused(await socket(direct.url, { 'x-forwarded-for': '203.0.113.2' }), 10_000);

    // Behind a trusted proxy (127.0.0.0/8 here): the right-most entry the proxies did not write.
    const proxied = await gateway(caps, ['127.0.0.0/8', '10.0.0.0/8']);
    await connect(proxied.url, 'xff_2', { 'x-forwarded-for': '203.0.113.1' });
    await connect(proxied.url, 'xff_3', { 'x-forwarded-for': '203.0.113.2, 10.1.2.3' }); // through a second trusted hop
    await expectRefused(await socket(proxied.url, { 'x-forwarded-for': '203.0.113.2' }), 10_000);
    // A client cannot pick its address by writing entries in front of what the proxy appended.
    await expectRefused(await socket(proxied.url, { 'x-forwarded-for': '198.51.100.7, 203.0.113.1' }), 10_000);
    await connect(proxied.url, 'xff_4', { 'x-forwarded-for': '198.51.100.7' });
  });

  it('forgets what it counted when connections close', async () => {
    const { url, node } = await gateway({ perUser: 1, perAddress: 2, unauthenticatedPerAddress: 1 });
    const a = await connect(url, 'forget_me');
    const b = await socket(url);
    await expectRefused(await socket(url), 10_000);
    a.close();
    b.close();
    await a.waitClosed();
    await b.waitClosed();
    await expect.poll(() => node.stats()).toMatchObject({ connections: 0, authenticated: 0, addresses: 0 });
    await connect(url, 'forget_me');
  });
});
