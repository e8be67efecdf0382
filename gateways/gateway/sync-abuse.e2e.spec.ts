import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversationStreamId } from '../../commands/ids.js';
import type { ReadStreamOptions } from '../../domain/ports/event-store.js';
import { createMemoryPresenceStore } from '../../infra/presence/memory.js';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { Connection, type ConnectionDeps, type Socket } from './connection.js';
import { ErrorCode, MAX_CURSORS, PROTOCOL_VERSION, decodeServerFrame, encodeClientFrame, type ServerFrame } from '../protocol/index.js';
import { createSyncBudget } from './sync-budget.js';
import { connectClient, type TestClient } from './testing/client.js';
import { createChatClient, memoryCursorStore, type ChatClient } from '../sdk/index.js';
import WebSocket from 'ws';

/**
 * One user cannot make the gateway work for everyone: a Sync is screened before any
 * stream is read (a stranger costs what an unknown id costs), and every cursor, Hello's too, costs
 * the user's Sync budget: a flood of cursors is answered RATE_LIMITED with retry_after_ms, not run.
 */
describe('Sync: strangers and cursor floods (embedded stack)', () => {
  let stack: ApiStack;
  let url: string;
  const open: TestClient[] = [];
  /** Every stream read the server makes (the stack's store is the one its gateway and commands use). */
  const reads: string[] = [];

  let baseUrl: string;
  const sdkClients: ChatClient[] = [];

  beforeAll(async () => {
    // 2 cursors per second, bursts of 10: small enough to see pacing without thousands of conversations.
    stack = await createApiStack('pglite', { env: { WS_SYNC_CURSOR_RATE: '2' } });
    baseUrl = await stack.listenAll();
    url = `ws://127.0.0.1:${await realtimePort()}/ws`;
    const store = stack.store;
    const readStream = store.readStream.bind(store);
    store.readStream = (streamId: string, options?: ReadStreamOptions) => {
      reads.push(streamId);
      return readStream(streamId, options);
    };
  }, 120_000);
  afterAll(async () => {
    for (const c of open) c.close();
    await Promise.all(sdkClients.map((c) => c.close()));
    await stack?.close();
  });

  /** The gateway's port, as a client discovers it. */
  async function realtimePort(): Promise<number> {
    const someone = await stack.client.register('sa_discover');
    const { websocket_url } = (await stack.client.as(someone).get('/api/v1/realtime')).body as { websocket_url: string };
    return Number(new URL(websocket_url).port);
  }

  const as = (user: Registered) => stack.client.as(user);
  async function connect(user: Registered, cursors: { conversationId: string; lastVersion: number }[] = []) {
    const client = await connectClient(url, { token: user.token, cursors });
    open.push(client);
    return client;
  }
  const readsOf = (conversationId: string) => reads.filter((r) => r === conversationStreamId(conversationId)).length;

  it('answers a stranger SyncDone access_ended at his cursor without reading the stream, as for an unknown id; members and a removed member get their replay', async () => {
    const [alice, bob, carol, dave] = [await stack.client.register('sa_alice'), await stack.client.register('sa_bob'), await stack.client.register('sa_carol'), await stack.client.register('sa_dave')];
    const group = await as(alice).post('/api/v1/groups', { name: 'busy', member_ids: [bob.user_id, dave.user_id] });
    expect(group.status).toBe(201);
    const id: string = group.body.conversation_id;
    for (let i = 0; i < 20; i++) expect((await as(alice).post(`/api/v1/conversations/${id}/messages`, { content: `m${i}` })).status).toBe(201);
    const removed = await as(alice).delete(`/api/v1/groups/${id}/members/${dave.user_id}`);
    expect(removed.status).toBe(200);
    for (let i = 20; i < 25; i++) expect((await as(alice).post(`/api/v1/conversations/${id}/messages`, { content: `m${i}` })).status).toBe(201);
    const unknown = randomUUID();

    // carol was never a member: the same answer as for an id that does not exist, and no read of either stream.
    const before = { group: readsOf(id), unknown: readsOf(unknown) };
    const c = await connect(carol, [{ conversationId: id, lastVersion: 3 }]);
    const done = await c.waitFor('syncDone', (s) => s.conversationId === id);
    const sync = await c.request({ case: 'sync', value: { cursors: [{ conversationId: unknown, lastVersion: 3 }] } });
    expect(sync.body.case).toBe('ok');
    const doneUnknown = await c.waitFor('syncDone', (s) => s.conversationId === unknown);
    expect(done).toEqual({ conversationId: id, version: 3, accessEnded: true });
    expect(doneUnknown).toEqual({ conversationId: unknown, version: 3, accessEnded: true });
    expect(c.events()).toEqual([]);
    expect({ group: readsOf(id), unknown: readsOf(unknown) }).toEqual(before);

    // dave, removed after 20 messages, still gets everything up to his removal, and nothing after it.
    const d = await connect(dave, [{ conversationId: id, lastVersion: 0 }]);
    const daveDone = await d.waitFor('syncDone', (s) => s.conversationId === id);
    const daveEvents = d.events(id);
    expect(daveDone.accessEnded).toBe(true);
    expect(daveEvents.at(-1)?.payload.case).toBe('memberRemoved');
    expect(daveEvents.at(-1)?.version).toBe(daveDone.version);
    expect(daveEvents.filter((e) => e.payload.case === 'messageSent')).toHaveLength(20);

    // bob, a member, gets all of it.
    const b = await connect(bob, [{ conversationId: id, lastVersion: 0 }]);
    const bobDone = await b.waitFor('syncDone', (s) => s.conversationId === id);
    expect(bobDone.accessEnded).toBe(false);
    expect(b.events(id).filter((e) => e.payload.case === 'messageSent')).toHaveLength(25);
  });

  it('paces a flood of cursors: a Sync past the user\'s budget is answered RATE_LIMITED with retry_after_ms and nothing of it is replayed', async () => {
    const mallory = await stack.client.register('sa_mallory');
    const c = await connect(mallory);
    const cursors = (n: number) => Array.from({ length: n }, () => ({ conversationId: randomUUID(), lastVersion: 0 }));
    const first = cursors(1_800);
    const firstReply = await c.request({ case: 'sync', value: { cursors: first } }, 60_000);
    expect(firstReply.body.case).toBe('ok');
    const syncDones = () => c.frames.filter((f) => f.body.case === 'syncDone').length;
    expect(syncDones()).toBe(1_800);

    // The budget (10 cursors, 2 per second) is now ~1,790 cursors in debt: the next Syncs are refused, not run.
    for (let i = 0; i < 5; i++) {
      const refused = await c.request({ case: 'sync', value: { cursors: cursors(1_800) } });
      expect(refused.body.case).toBe('error');
      if (refused.body.case !== 'error') throw new Error('unreachable');
      expect(refused.body.value).toMatchObject({ code: ErrorCode.RATE_LIMITED, retryable: true, reason: 'sync_rate_limited' });
      expect(refused.body.value.retryAfterMs).toBeGreaterThan(800_000);
    }
    // Even a Sync of one cursor waits its turn.
    const one = await c.request({ case: 'sync', value: { cursors: cursors(1) } });
    expect(one.body.case === 'error' && one.body.value.reason).toBe('sync_rate_limited');
    await c.request({ case: 'ping', value: { clientTimeMs: 1 } });
    expect(syncDones()).toBe(1_800);
    expect(c.closed).toBeNull();

    // Reconnecting does not refill it: the budget is the user's. Hello's cursors are deferred, the session opens.
    const again = await connect(mallory, cursors(20));
    const deferred = await again.waitUntil(() => again.frames.find((f) => f.requestId === 0 && f.body.case === 'error'));
    if (deferred.body.case !== 'error') throw new Error('unreachable');
    expect(deferred.body.value).toMatchObject({ code: ErrorCode.RATE_LIMITED, reason: 'sync_deferred', field: 'hello.cursors' });
    expect(deferred.body.value.retryAfterMs).toBeGreaterThan(800_000);
    await again.request({ case: 'ping', value: { clientTimeMs: 1 } });
    expect(again.frames.filter((f) => f.body.case === 'syncDone')).toEqual([]);
  });

  it('syncs a user with more conversations than the server takes at once: refused Syncs and deferred Hello cursors are sent again after retry_after_ms', async () => {
    const user = await stack.client.register('sa_many');
    const group = async (name: string) => (await stack.client.as(user).post('/api/v1/groups', { name, member_ids: [] })).body.conversation_id as string;
    const first: string[] = [];
    for (let i = 0; i < 12; i++) first.push(await group(`first ${i}`));
    // Six more the client learns of later (over REST, say): no live event will tell it about them.
    const more: string[] = [];
    for (let i = 0; i < 6; i++) more.push(await group(`more ${i}`));

    // Hello carries 12 cursors: taken (the bucket of 10 goes 2 into debt).
    const sockets: WebSocket[] = [];
    class Tracked extends WebSocket {
      constructor(address: string) {
        super(address);
        sockets.push(this);
      }
    }
    const c = createChatClient({
      baseUrl,
      token: user.token,
      deviceId: 'many-1',
      WebSocket: Tracked,
      cursorStore: memoryCursorStore(Object.fromEntries(first.map((id) => [id, 0]))),
      reconnect: { minMs: 50, maxMs: 200 },
    });
    sdkClients.push(c);
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    const done = new Map<string, number>();
    c.on('syncDone', (s) => done.set(s.conversationId, (done.get(s.conversationId) ?? 0) + 1));
    const until = async (probe: () => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      while (!probe()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; synced ${done.size}, stats ${JSON.stringify(c.stats())}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await c.connect();
    await until(() => first.every((id) => done.get(id) === 1), 'the Hello cursors');

    // The six, tracked now: their Sync finds the bucket empty and is refused; the SDK waits and sends it again.
    for (const id of more) c.track(id, 0);
    await until(() => more.every((id) => done.get(id) === 1), 'the tracked conversations');
    expect(c.stats().syncsDeferred).toBeGreaterThanOrEqual(1);
    expect(more.every((id) => c.cursor(id) === 1)).toBe(true);

    // Reconnect at once: the bucket is in debt, so Hello's 18 cursors are deferred; the SDK Syncs them when told.
    const deferredBefore = c.stats().syncsDeferred;
    sockets.at(-1)!.terminate();
    await until(() => [...first, ...more].every((id) => done.get(id) === 2), 'the deferred Hello cursors');
    expect(c.stats().syncsDeferred).toBeGreaterThan(deferredBefore);
    expect(c.stats().reconnects).toBe(1);
    expect(errors).toEqual([]);
  }, 90_000);
});

describe('Sync: the work one connection may have queued', () => {
  it('refuses a Sync that would leave more than 2 x MAX_CURSORS cursors waiting on the connection (RATE_LIMITED, sync_backlog)', async () => {
    const sent: ServerFrame[] = [];
    const socket: Socket = {
      send(bytes) {
        const decoded = decodeServerFrame(bytes);
        if (decoded.ok) sent.push(decoded.frame);
        return 'ok';
      },
      bufferedAmount: () => 0,
      end() {},
    };
    // Screening that never answers: every cursor of an admitted Sync stays queued.
    const screened: string[][] = [];
    const unused = async (): Promise<never> => {
      throw new Error('not used in this test');
    };
    const deps: ConnectionDeps = {
      nodeId: 'n',
      tokens: { verify: async (token: string) => ({ userId: token, username: token }) },
      commands: {
        sendMessage: unused,
        markWatermark: unused,
        access: unused,
        otherMembers: unused,
        screen: (_user, ids) => {
          screened.push([...ids]);
          return new Promise(() => {});
        },
      },
      store: { readStream: unused },
      queries: { contacts: async () => [] },
      presence: createMemoryPresenceStore(),
      logger: pino({ level: 'silent' }),
      hub: { register() {}, unregister() {}, addContacts() {}, authenticate: () => null },
      clock: Date.now,
      maxBufferedBytes: 1 << 20,
      maxHeldEvents: 10,
      // A budget that never runs out: only the queue bound can refuse.
      syncBudget: createSyncBudget({ perSecond: 1e9, burst: 1e9 }, Date.now),
    };
    const c = new Connection(deps, socket, '');
    const frame = (requestId: number, body: Parameters<typeof encodeClientFrame>[0]['body']) => encodeClientFrame({ requestId, body }).slice().buffer;
    c.onMessage(frame(1, { case: 'hello', value: { token: 'queuer', protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors: [] } }), true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(c.state).toBe('open');
    const cursors = (n: number) => Array.from({ length: n }, () => ({ conversationId: randomUUID(), lastVersion: 0 }));
    c.onMessage(frame(2, { case: 'sync', value: { cursors: cursors(MAX_CURSORS) } }), true);
    c.onMessage(frame(3, { case: 'sync', value: { cursors: cursors(MAX_CURSORS) } }), true);
    c.onMessage(frame(4, { case: 'sync', value: { cursors: cursors(1) } }), true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const refused = sent.find((f) => f.requestId === 4);
    expect(refused?.body.case).toBe('error');
    if (refused?.body.case !== 'error') throw new Error('unreachable');
    expect(refused.body.value).toMatchObject({ code: ErrorCode.RATE_LIMITED, reason: 'sync_backlog', retryable: true });
    expect(refused.body.value.retryAfterMs).toBeGreaterThan(0);
    expect(sent.some((f) => f.requestId === 2 || f.requestId === 3)).toBe(false); // still running: no reply yet
    expect(screened).toHaveLength(1); // one at a time: the second waits behind the first
    c.onClose();
  });
  it('replays the Hello cursors it took even when the contacts query fails (nothing stays held or counted as queued)', async () => {
    const sent: ServerFrame[] = [];
    const socket: Socket = {
      send(bytes) {
        const decoded = decodeServerFrame(bytes);
        if (decoded.ok) sent.push(decoded.frame);
        return 'ok';
      },
      bufferedAmount: () => 0,
      end() {},
    };
    const unused = async (): Promise<never> => {
      throw new Error('not used in this test');
    };
    const ids = [randomUUID(), randomUUID()];
    const c = new Connection(
      {
        nodeId: 'n',
        tokens: { verify: async (token: string) => ({ userId: token, username: token }) },
        commands: { sendMessage: unused, markWatermark: unused, access: unused, otherMembers: unused, screen: async (_user, list) => new Map(list.map((id) => [id, 'unknown' as const])) },
        store: { readStream: unused },
        queries: { contacts: async () => Promise.reject(new Error('read model down')) },
        presence: createMemoryPresenceStore(),
        logger: pino({ level: 'silent' }),
        hub: { register() {}, unregister() {}, addContacts() {}, authenticate: () => null },
        clock: Date.now,
        maxBufferedBytes: 1 << 20,
        maxHeldEvents: 10,
        syncBudget: createSyncBudget({ perSecond: 1e9, burst: 1e9 }, Date.now),
      },
      socket,
      '',
    );
    const cursors = ids.map((conversationId) => ({ conversationId, lastVersion: 4 }));
    c.onMessage(encodeClientFrame({ requestId: 1, body: { case: 'hello', value: { token: 'no_contacts', protocolVersion: PROTOCOL_VERSION, deviceId: 'd', cursors } } }).slice().buffer, true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sent.filter((f) => f.body.case === 'syncDone').map((f) => f.body.value)).toEqual(ids.map((conversationId) => ({ conversationId, version: 4, accessEnded: true })));
    // Nothing left queued: a full Sync is taken again.
    c.onMessage(encodeClientFrame({ requestId: 2, body: { case: 'sync', value: { cursors: Array.from({ length: MAX_CURSORS }, () => ({ conversationId: randomUUID(), lastVersion: 0 })) } } }).slice().buffer, true);
    c.onMessage(encodeClientFrame({ requestId: 3, body: { case: 'sync', value: { cursors: Array.from({ length: MAX_CURSORS }, () => ({ conversationId: randomUUID(), lastVersion: 0 })) } } }).slice().buffer, true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sent.filter((f) => f.requestId === 2 || f.requestId === 3).map((f) => f.body.case)).toEqual(['ok', 'ok']);
    c.onClose();
  });
});
