import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { ContentType, ErrorCode, PresenceStatus, type ServerMessage } from '../protocol/index.js';
import { connectClient, openSocket, type TestClient } from './testing/client.js';

/**
 * The WebSocket gateway over the embedded stack (PGlite in memory, memory bus and presence, the
 * in-process relay and delivery worker), with real sockets: PROTOCOL.md end to end.
 */
describe('WebSocket gateway (embedded stack)', () => {
  let stack: ApiStack;
  let url: string;
  const open: TestClient[] = [];

  beforeAll(async () => {
    stack = await createApiStack('pglite');
    const port = await stack.listenRealtime('127.0.0.1', 0);
    url = `ws://127.0.0.1:${port}/ws`;
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await stack?.close();
  });

  const as = (user: Registered | null) => stack.client.as(user);

  async function connect(user: Registered, options: { deviceId?: string; cursors?: { conversationId: string; lastVersion: number }[] } = {}) {
    const client = await connectClient(url, { token: user.token, ...options });
    open.push(client);
    return client;
  }

  async function direct(a: Registered, b: Registered): Promise<string> {
    const res = await as(a).post('/api/v1/conversations', { participant_id: b.user_id });
    expect([200, 201]).toContain(res.status);
    return res.body.conversation_id;
  }

  function sendFrame(conversationId: string, content: string, clientMessageId: string) {
    return { case: 'sendMessage' as const, value: { conversationId, clientMessageId, content, contentType: ContentType.TEXT } };
  }

  it('discovery: GET /api/v1/realtime names the WebSocket endpoint from configuration, whatever Host the request names', async () => {
    const alice = await stack.client.register('disc');
    const res = await as(alice).get('/api/v1/realtime');
    expect(res.status).toBe(200);
    expect(res.body.websocket_url).toBe(url);
    const spoofs: Record<string, string>[] = [{ host: 'evil.example:1234' }, { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' }];
    for (const headers of spoofs) {
      const spoofed = await as(alice).get('/api/v1/realtime', headers);
      expect(spoofed.body.websocket_url).toBe(url);
    }
    const client = await connectClient(res.body.websocket_url, { token: alice.token });
    open.push(client);
    expect(client.welcome.userId).toBe(alice.user_id);
  });

  it('alice and bob: message, delivered and read receipts, typing and presence cross', async () => {
    const alice = await stack.client.register('alice');
    const bob = await stack.client.register('bob');
    const conversationId = await direct(alice, bob);

    const a = await connect(alice);
    expect(a.welcome).toMatchObject({ userId: alice.user_id, protocolVersion: 1, heartbeatIntervalMs: 30_000, maxFrameBytes: 131072 });
    const b = await connect(bob);
    // alice sees bob come online (a live presence change to a contact)
    await a.waitFor('presence', (p) => p.userId === bob.user_id && p.status === PresenceStatus.ONLINE);

    // send, ack, live event on both sides
    const ack = await a.request(sendFrame(conversationId, 'hello bob', 'c-1'));
    expect(ack.body.case).toBe('sendAck');
    const sent = ack.body.value as ServerMessage<'sendAck'>;
    expect(sent).toMatchObject({ conversationId, duplicate: false });
    const version = sent.sequenceNumber;
    const live = await b.waitFor('event', (e) => e.version === version);
    expect(live.payload.case).toBe('messageSent');
    expect(live.payload.value).toMatchObject({ content: 'hello bob', senderId: alice.user_id, messageId: sent.messageId });
    expect(live.previousVersion).toBe(version - 1);
    await a.waitFor('event', (e) => e.version === version);

    // a retry with the same client_message_id is a duplicate with the original values
    const retry = await a.request(sendFrame(conversationId, 'hello bob', 'c-1'));
    expect(retry.body.value).toMatchObject({ sequenceNumber: version, messageId: sent.messageId, duplicate: true });

    // receipts reach the sender
    expect((await b.request({ case: 'ackDelivered', value: { conversationId, upToVersion: version } })).body.case).toBe('ok');
    const delivered = await a.waitFor('event', (e) => e.payload.case === 'delivered');
    expect(delivered.payload.value).toMatchObject({ userId: bob.user_id, upToVersion: version, deviceId: 'device-1' });
    expect((await b.request({ case: 'markRead', value: { conversationId, upToVersion: version } })).body.case).toBe('ok');
    const read = await a.waitFor('event', (e) => e.payload.case === 'read');
    expect(read.payload.value).toMatchObject({ userId: bob.user_id, upToVersion: version });
    // a watermark past the stream is refused
    const ahead = await b.request({ case: 'markRead', value: { conversationId, upToVersion: 10_000 } });
    expect(ahead.body.case).toBe('error');
    expect(ahead.body.value).toMatchObject({ code: ErrorCode.VALIDATION, reason: 'version_ahead' });

    // typing, over WS and over REST
    expect((await b.request({ case: 'typing', value: { conversationId, isTyping: true } })).body.case).toBe('ok');
    const typing = await a.waitFor('typing', (t) => t.userId === bob.user_id && t.isTyping);
    expect(typing.conversationId).toBe(conversationId);
    const rest = await as(alice).post(`/api/v1/conversations/${conversationId}/typing`, { is_typing: true });
    expect(rest.status).toBe(200);
    await b.waitFor('typing', (t) => t.userId === alice.user_id && t.isTyping);

    // presence: away, REST reads, then offline when bob's last connection closes
    expect((await b.request({ case: 'setPresence', value: { status: PresenceStatus.AWAY } })).body.case).toBe('ok');
    await a.waitFor('presence', (p) => p.userId === bob.user_id && p.status === PresenceStatus.AWAY);
    expect((await as(alice).get(`/api/v1/users/${bob.user_id}/presence`)).body).toMatchObject({ user_id: bob.user_id, status: 'away' });
    expect((await as(alice).put(`/api/v1/users/${bob.user_id}/presence`, { status: 'online' })).status).toBe(403);
    const stranger = await stack.client.register('stranger');
    expect((await as(stranger).get(`/api/v1/users/${bob.user_id}/presence`)).status).toBe(403);
    expect((await as(alice).put(`/api/v1/users/${alice.user_id}/presence`, { status: 'away' })).body).toMatchObject({ status: 'away' });
    await b.waitFor('presence', (p) => p.userId === alice.user_id && p.status === PresenceStatus.AWAY);

    // ping / pong
    const pong = await a.request({ case: 'ping', value: { clientTimeMs: 42 } });
    expect(pong.body).toMatchObject({ case: 'pong', value: { clientTimeMs: 42 } });

    b.close();
    const offline = await a.waitFor('presence', (p) => p.userId === bob.user_id && p.status === PresenceStatus.OFFLINE);
    expect(offline.lastSeenMs).toBeGreaterThan(0);

    // a second connection of alice gets the presence snapshot of her contacts that are not offline
    const b2 = await connect(bob, { deviceId: 'device-2' });
    const snapshot = await b2.waitFor('presence', (p) => p.userId === alice.user_id);
    expect(snapshot.status).toBe(PresenceStatus.AWAY);
  });

  it('a client offline during 100 messages gets all 100 on reconnect, then live ones, none twice, in order', async () => {
    const alice = await stack.client.register('sender');
    const bob = await stack.client.register('sleeper');
    const conversationId = await direct(alice, bob);
    const b1 = await connect(bob);
    const a = await connect(alice);
    const first = await a.request(sendFrame(conversationId, 'before', 'before'));
    const cursor = (first.body.value as ServerMessage<'sendAck'>).sequenceNumber;
    await b1.waitFor('event', (e) => e.version === cursor);
    b1.close();
    await b1.waitClosed();

    const sends = [];
    for (let i = 0; i < 100; i++) sends.push(a.request(sendFrame(conversationId, `offline ${i}`, `off-${i}`)));
    const acks = await Promise.all(sends);
    const last = Math.max(...acks.map((r) => (r.body.value as ServerMessage<'sendAck'>).sequenceNumber));

    const b2 = await connect(bob, { cursors: [{ conversationId, lastVersion: cursor }] });
    // live messages while the replay may still run
    const liveSends = [];
    for (let i = 0; i < 5; i++) liveSends.push(a.request(sendFrame(conversationId, `live ${i}`, `live-${i}`)));
    const liveAcks = await Promise.all(liveSends);
    const lastLive = Math.max(...liveAcks.map((r) => (r.body.value as ServerMessage<'sendAck'>).sequenceNumber));
    await b2.waitFor('event', (e) => e.version === lastLive, 10_000);
    const done = await b2.waitFor('syncDone', (s) => s.conversationId === conversationId);
    expect(done.accessEnded).toBe(false);
    expect(done.version).toBeGreaterThanOrEqual(last);

    const versions = b2.events(conversationId).map((e) => e.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions[0]).toBe(cursor + 1);
    const contents = b2
      .events(conversationId)
      .filter((e) => e.payload.case === 'messageSent')
      .map((e) => (e.payload.value as { content: string }).content);
    expect(contents).toHaveLength(105);
    expect(contents.slice(0, 100).sort()).toEqual(Array.from({ length: 100 }, (_, i) => `offline ${i}`).sort());
    expect(contents.slice(100).sort()).toEqual(Array.from({ length: 5 }, (_, i) => `live ${i}`).sort());
    // gap-free for the client's rule: each event's previous_version is one it has
    let seen = cursor;
    for (const e of b2.events(conversationId)) {
      expect(e.previousVersion).toBeLessThanOrEqual(seen);
      seen = e.version;
    }

    // a Sync of a conversation bob is not in ends access, and is acked after its SyncDone
    const carol = await stack.client.register('carol');
    const other = await direct(alice, carol);
    const sync = await b2.request({ case: 'sync', value: { cursors: [{ conversationId: other, lastVersion: 0 }] } });
    expect(sync.body.case).toBe('ok');
    const denied = await b2.waitFor('syncDone', (s) => s.conversationId === other);
    expect(denied.accessEnded).toBe(true);
    expect(b2.events(other)).toHaveLength(0);
  });

  it('a group of 256 members: one message reaches every connected member once', async () => {
    const members: Registered[] = [];
    for (let i = 0; i < 256; i++) {
      const user = await stack.users.create({ username: `g256_${process.pid}_${i}`, email: `g256_${process.pid}_${i}@example.test`, password: 'x'.repeat(12), phone_number: null });
      members.push({ user_id: user.user_id, username: user.username, token: (await stack.accounts.openSession(user.user_id)).token });
    }
    const [owner, ...rest] = members as [Registered, ...Registered[]];
    const created = await as(owner).post('/api/v1/groups', { name: 'big', member_ids: rest.map((m) => m.user_id) });
    expect(created.status).toBe(201);
    const conversationId: string = created.body.conversation_id;

    const clients: TestClient[] = [];
    for (let i = 0; i < members.length; i += 32) {
      clients.push(...(await Promise.all(members.slice(i, i + 32).map((m) => connect(m)))));
    }
    expect(stack.gateway.stats().authenticated).toBeGreaterThanOrEqual(256);
    const ack = await clients[0]!.request(sendFrame(conversationId, 'hello everyone', 'big-1'), 10_000);
    const version = (ack.body.value as ServerMessage<'sendAck'>).sequenceNumber;
    await Promise.all(clients.map((c) => c.waitFor('event', (e) => e.version === version, 15_000)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const c of clients) expect(c.events(conversationId).filter((e) => e.version === version)).toHaveLength(1);
    for (const c of clients) c.close();
  }, 120_000);

  it('a member added while connected gets events from MembersAdded on; every device gets everything', async () => {
    const owner = await stack.client.register('owner');
    const late = await stack.client.register('late');
    const created = await as(owner).post('/api/v1/groups', { name: 'g', member_ids: [] });
    const conversationId: string = created.body.conversation_id;
    const phone = await connect(owner, { deviceId: 'phone' });
    const laptop = await connect(owner, { deviceId: 'laptop' });
    const l = await connect(late);
    const before = await phone.request(sendFrame(conversationId, 'before', 'g-before'));
    const beforeVersion = (before.body.value as ServerMessage<'sendAck'>).sequenceNumber;
    expect((await as(owner).post(`/api/v1/groups/${conversationId}/members`, { user_ids: [late.user_id] })).status).toBeLessThan(300);
    const added = await l.waitFor('event', (e) => e.payload.case === 'membersAdded');
    expect(added.version).toBe(beforeVersion + 1);
    await laptop.request(sendFrame(conversationId, 'after', 'g-after'));
    const after = await l.waitFor('event', (e) => e.payload.case === 'messageSent');
    expect(after.payload.value).toMatchObject({ content: 'after' });
    expect(l.events(conversationId).some((e) => e.version === beforeVersion)).toBe(false);
    // both of the owner's devices got all three events, in order
    for (const device of [phone, laptop]) {
      await device.waitFor('event', (e) => e.version === after.version);
      expect(device.events(conversationId).map((e) => e.version)).toEqual([beforeVersion, beforeVersion + 1, after.version]);
    }
    // the new member and the others learned each other as contacts from the live MembersAdded
    expect((await laptop.request({ case: 'setPresence', value: { status: PresenceStatus.AWAY } })).body.case).toBe('ok');
    await l.waitFor('presence', (p) => p.userId === owner.user_id && p.status === PresenceStatus.AWAY);
    // the new member may type at once, and the others see it (and only they: typing is addressed to members)
    const stranger = await connect(await stack.client.register('nosy'));
    expect((await l.request({ case: 'typing', value: { conversationId, isTyping: true } })).body.case).toBe('ok');
    await phone.waitFor('typing', (t) => t.userId === late.user_id);
    await laptop.waitFor('typing', (t) => t.userId === late.user_id);
    expect((await stranger.request({ case: 'ping', value: { clientTimeMs: 1 } })).body.case).toBe('pong');
    expect(stranger.frames.some((f) => f.body.case === 'typing')).toBe(false);
    expect(l.frames.some((f) => f.body.case === 'typing')).toBe(false);
    l.close();
    await phone.waitFor('presence', (p) => p.userId === late.user_id && p.status === PresenceStatus.OFFLINE);
    // a non-member may not type
    const denied = await stranger.request({ case: 'typing', value: { conversationId, isTyping: true } });
    expect(denied.body.value).toMatchObject({ code: ErrorCode.NOT_FOUND, reason: 'conversation_not_found' });
    const refused = await stranger.request(sendFrame(conversationId, 'hi', 'nope'));
    expect(refused.body.value).toMatchObject({ code: ErrorCode.NOT_FOUND, reason: 'conversation_not_found' });
  });

  it('handshake errors: frame before Hello, bad token, text frames, second Hello, query-string token', async () => {
    const user = await stack.client.register('hs');
    const early = await openSocket(url);
    early.sendRaw(new Uint8Array([0x08, 0x07, 0x3a, 0x00])); // request_id 7 + ping
    const err = await early.waitFor('error');
    expect(err.code).toBe(ErrorCode.NOT_AUTHENTICATED);
    expect((await early.waitClosed()).code).toBe(4101);

    const bad = await openSocket(url);
    const reply = await bad.request({ case: 'hello', value: { token: 'nope', protocolVersion: 1, deviceId: 'd', cursors: [] } });
    expect(reply.body.value).toMatchObject({ code: ErrorCode.UNAUTHENTICATED });
    expect((await bad.waitClosed()).code).toBe(4100);

    const text = await openSocket(url);
    text.sendRaw('hello');
    expect((await text.waitFor('error')).code).toBe(ErrorCode.MALFORMED_FRAME);
    expect((await text.waitClosed()).code).toBe(4101);

    const viaQuery = await connectClient(`${url}?token=${encodeURIComponent(user.token)}`, { token: '' });
    open.push(viaQuery);
    expect(viaQuery.welcome.userId).toBe(user.user_id);
    const second = await viaQuery.request({ case: 'hello', value: { token: user.token, protocolVersion: 1, deviceId: 'd', cursors: [] } });
    expect(second.body.value).toMatchObject({ code: ErrorCode.ILLEGAL_STATE, reason: 'already_authenticated' });

    const future = await openSocket(url);
    const negotiated = await future.request({ case: 'hello', value: { token: user.token, protocolVersion: 7, deviceId: 'd', cursors: [] } });
    expect(negotiated.body.value).toMatchObject({ protocolVersion: 1 });
    future.close();
  });

  it('hostile values in frames get Error VALIDATION naming the field (never INTERNAL), store nothing, keep the connection', async () => {
    const alice = await stack.client.register('hostile_ws_a');
    const bob = await stack.client.register('hostile_ws_b');
    const conversationId = await direct(alice, bob);
    const a = await connect(alice);
    await a.request({ case: 'sync', value: { cursors: [{ conversationId, lastVersion: 0 }] } });
    const versionBefore = (await a.waitFor('syncDone', (d) => d.conversationId === conversationId)).version;

    const cases: [string, Parameters<typeof a.request>[0]][] = [
      ['send_message.content', sendFrame(conversationId, 'a\u0000b', 'h-1')],
      ['send_message.content', sendFrame(conversationId, 'a\uffffb', 'h-2')],
      ['send_message.client_message_id', sendFrame(conversationId, 'hi', 'h\u0000')],
      ['send_message.conversation_id', sendFrame('c\u0000', 'hi', 'h-3')],
      ['typing.conversation_id', { case: 'typing', value: { conversationId: 'c\u0000', isTyping: true } }],
      ['mark_read.conversation_id', { case: 'markRead', value: { conversationId: '\u0000', upToVersion: 1 } }],
      ['ack_delivered.up_to_version', { case: 'ackDelivered', value: { conversationId, upToVersion: 2 ** 31 } }],
      ['sync.cursors[0].conversation_id', { case: 'sync', value: { cursors: [{ conversationId: 'c\u0000', lastVersion: 0 }] } }],
      ['sync.cursors[0].last_version', { case: 'sync', value: { cursors: [{ conversationId, lastVersion: 2 ** 40 }] } }],
    ];
    for (const [field, body] of cases) {
      const reply = await a.request(body);
      expect({ field, reply: reply.body.case, code: reply.body.case === 'error' ? reply.body.value.code : null }).toEqual({ field, reply: 'error', code: ErrorCode.VALIDATION });
      expect(reply.body.value).toMatchObject({ field });
    }
    expect(a.closed).toBeNull();
    // Nothing was stored; a good send still works on the same connection.
    const ack = await a.request(sendFrame(conversationId, 'still here', 'h-ok'));
    expect(ack.body.value).toMatchObject({ sequenceNumber: versionBefore + 1 });

    // A Hello with a device id the store cannot hold: VALIDATION, and a corrected Hello is welcome.
    const fresh = await openSocket(url);
    open.push(fresh);
    const refused = await fresh.request({ case: 'hello', value: { token: alice.token, protocolVersion: 1, deviceId: 'phone\u0000', cursors: [] } });
    expect(refused.body.value).toMatchObject({ code: ErrorCode.VALIDATION, field: 'hello.device_id' });
    const welcome = await fresh.request({ case: 'hello', value: { token: alice.token, protocolVersion: 1, deviceId: 'phone', cursors: [] } });
    expect(welcome.body.case).toBe('welcome');
  });
});

describe('WebSocket discovery with PUBLIC_WS_URL', () => {
  let stack: ApiStack;
  beforeAll(async () => {
    stack = await createApiStack('pglite', { env: { PUBLIC_WS_URL: 'wss://chat.example.com/ws' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('answers the configured URL, also before (or without) a gateway listening here, and ignores Host', async () => {
    const alice = await stack.client.register('pubws');
    const res = await stack.client.as(alice).get('/api/v1/realtime', { host: 'evil.example:1234' });
    expect(res.status).toBe(200);
    expect(res.body.websocket_url).toBe('wss://chat.example.com/ws');
  });
});
