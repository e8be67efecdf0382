import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSharedNamespace } from './testing/shared-services.js';
import { followConversation } from './testing/conversation-follower.js';
import { sendPipelined } from './testing/pipelined-sender.js';
import { startServerProcess, type ServerProcess } from './testing/server-process.js';
import { ContentType, PresenceStatus, type ServerMessage } from './protocol/index.js';
import { connectClient, type TestClient } from './gateway/testing/client.js';

/**
 * The split deployment against the real services on this machine (PostgreSQL with two shards,
 * NATS JetStream, Redis), each process spawned as an operator would run it:
 *
 *   gateway A   ROLES=gateway                 alice's socket
 *   gateway B   ROLES=gateway                 bob's socket (SIGKILLed mid-stream)
 *   core        ROLES=api,relay,delivery      REST (register, conversations), store → NATS → nodes
 *   projector   ROLES=projector               read models
 *
 * Messages, receipts, typing and presence cross from one gateway node to the other; then gateway
 * B dies in the middle of a stream of 1,000 messages and bob, reconnecting to A with his cursor,
 * ends with every message exactly once, in order.
 */

const JWT_SECRET = 'topology-test-secret-topology-test-secret-0123';
const STREAM = 1_000;

type User = { user_id: string; token: string };

describe('split deployment: two gateways, api+relay+delivery, projector (NATS, PostgreSQL, Redis)', () => {
  let namespace: Awaited<ReturnType<typeof createSharedNamespace>>;
  let dataDir: string;
  const processes: ServerProcess[] = [];
  const sockets: TestClient[] = [];
  let gatewayA: ServerProcess;
  let gatewayB: ServerProcess;
  let core: ServerProcess;
  let alice: User;
  let bob: User;
  let conversationId: string;

  async function rest(method: string, path: string, token?: string, body?: unknown) {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${core.restUrl}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}\n${core.output()}`);
    return text ? JSON.parse(text) : null;
  }

  async function connect(gateway: ServerProcess, user: User, cursors: { conversationId: string; lastVersion: number }[] = []) {
    const client = await connectClient(gateway.wsUrl!, { token: user.token, cursors });
    sockets.push(client);
    return client;
  }

  beforeAll(async () => {
    namespace = await createSharedNamespace('topo');
    dataDir = await mkdtemp(join(tmpdir(), 'chat-topology-'));
    const common = {
      ...namespace.env,
      JWT_SECRET,
      CHAT_DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      WS_PORT: '0',
      RATE_LIMIT_MAX: '1000000',
      AUTH_RATE_LIMIT_MAX: '1000000',
      // Alice pipelines 1,000 sends on one socket, far over a person's WS_RATE_LIMIT: a refused
      // send retried later would land out of the order this test checks.
      WS_RATE_LIMIT: '100000',
      LOG_LEVEL: 'info',
    };
    const started = await Promise.allSettled([
      startServerProcess('gateway A', { ...common, ROLES: 'gateway', NODE_ID: 'gw-a' }),
      startServerProcess('gateway B', { ...common, ROLES: 'gateway', NODE_ID: 'gw-b' }),
      startServerProcess('core', { ...common, ROLES: 'api,relay,delivery', NODE_ID: 'core' }),
      startServerProcess('projector', { ...common, ROLES: 'projector', NODE_ID: 'projector' }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') processes.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    [gatewayA, gatewayB, core] = processes as [ServerProcess, ServerProcess, ServerProcess, ServerProcess];
    expect(gatewayA.wsUrl).not.toBeNull();
    expect(gatewayA.restUrl).toBeNull(); // a gateway serves no REST
    expect(core.restUrl).not.toBeNull();
    expect(core.wsUrl).toBeNull();
    expect(core.output()).toContain('"roles":"api,relay,delivery","bus":"jetstream","presence":"redis"');

    alice = await rest('POST', '/api/v1/auth/register', undefined, { username: 'alice', email: 'alice@example.test', password: 'alice long password' });
    bob = await rest('POST', '/api/v1/auth/register', undefined, { username: 'bob', email: 'bob@example.test', password: 'bob long password' });
    // Read-your-writes across processes: the API polls the projector's checkpoint.
    conversationId = (await rest('POST', '/api/v1/conversations', alice.token, { participant_id: bob.user_id })).conversation_id;
    const inbox = await rest('GET', '/api/v1/conversations', bob.token);
    expect(JSON.stringify(inbox)).toContain(conversationId);
  }, 60_000);

  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    const stopped = await Promise.all(processes.map((p) => p.stop()));
    try {
      // Every process still running stops cleanly on SIGTERM (B was SIGKILLed by the test).
      processes.forEach((p, i) => {
        if (p !== gatewayB) expect(stopped[i], p.output()).toEqual({ code: 0, signal: null });
      });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
      await namespace?.remove();
    }
  }, 60_000);

  it('message, delivery and read receipts, typing and presence cross from one gateway node to the other', async () => {
    const a = await connect(gatewayA, alice, [{ conversationId, lastVersion: 0 }]);
    await a.waitFor('syncDone', (s) => s.conversationId === conversationId);
    const b = await connect(gatewayB, bob, [{ conversationId, lastVersion: 0 }]);
    await b.waitFor('syncDone', (s) => s.conversationId === conversationId);

    // Presence: bob came online on B after alice's snapshot: the change crosses through Redis.
    await a.waitFor('presence', (p) => p.userId === bob.user_id && p.status === PresenceStatus.ONLINE);
    await b.waitFor('presence', (p) => p.userId === alice.user_id && p.status === PresenceStatus.ONLINE);

    // A message from alice on A reaches bob on B live (store → relay → JetStream → delivery → B).
    const sentAt = Date.now();
    const ack = await a.request({ case: 'sendMessage', value: { conversationId, clientMessageId: 'hello-1', content: 'hello bob', contentType: ContentType.TEXT } });
    expect(ack.body.case).toBe('sendAck');
    const version = (ack.body.value as ServerMessage<'sendAck'>).sequenceNumber;
    const live = await b.waitFor('event', (e) => e.version === version);
    const latencyMs = Date.now() - sentAt;
    expect(live.payload.case).toBe('messageSent');
    expect(live.payload.value).toMatchObject({ content: 'hello bob', senderId: alice.user_id });
    expect(latencyMs).toBeLessThan(2_000);

    // Receipts from bob on B reach alice on A (only the sender needs them).
    expect((await b.request({ case: 'ackDelivered', value: { conversationId, upToVersion: version } })).body.case).toBe('ok');
    const delivered = await a.waitFor('event', (e) => e.payload.case === 'delivered');
    expect(delivered.payload.value).toMatchObject({ userId: bob.user_id, upToVersion: version });
    expect((await b.request({ case: 'markRead', value: { conversationId, upToVersion: version } })).body.case).toBe('ok');
    const read = await a.waitFor('event', (e) => e.payload.case === 'read');
    expect(read.payload.value).toMatchObject({ userId: bob.user_id, upToVersion: version });

    // Typing, both ways.
    expect((await b.request({ case: 'typing', value: { conversationId, isTyping: true } })).body.case).toBe('ok');
    await a.waitFor('typing', (t) => t.userId === bob.user_id && t.conversationId === conversationId && t.isTyping);
    expect((await a.request({ case: 'typing', value: { conversationId, isTyping: true } })).body.case).toBe('ok');
    await b.waitFor('typing', (t) => t.userId === alice.user_id && t.isTyping);

    // Presence as bob goes: away, then offline when his last connection closes.
    expect((await b.request({ case: 'setPresence', value: { status: PresenceStatus.AWAY } })).body.case).toBe('ok');
    await a.waitFor('presence', (p) => p.userId === bob.user_id && p.status === PresenceStatus.AWAY);
    b.close();
    const offline = await a.waitFor('presence', (p) => p.userId === bob.user_id && p.status === PresenceStatus.OFFLINE);
    expect(Number(offline.lastSeenMs)).toBeGreaterThan(0);
    a.close();
    console.info(`[topology] alice (A) → bob (B): first message delivered in ${latencyMs} ms`);
  }, 30_000);

  it('gateway B is SIGKILLed in the middle of 1,000 messages; bob reconnects to A with his cursor and has every message once, in order', async () => {
    const history = await rest('GET', `/api/v1/conversations/${conversationId}/messages`, bob.token);
    const start = Math.max(0, ...history.messages.map((m: { sequence_number: number }) => m.sequence_number));
    const a = await connect(gatewayA, alice, [{ conversationId, lastVersion: start }]);
    await a.waitFor('syncDone', (s) => s.conversationId === conversationId);
    const b = await connect(gatewayB, bob, [{ conversationId, lastVersion: start }]);
    await b.waitFor('syncDone', (s) => s.conversationId === conversationId);

    // Kill B from inside bob's frame handler once he has applied 300 messages of the stream.
    let ackedAtKill = -1;
    let acked = 0;
    let streamedOnB = 0;
    const onB = followConversation(b, conversationId, {
      lastSeen: start,
      onApplied: (event) => {
        if (event.payload.case === 'messageSent') streamedOnB++;
        if (ackedAtKill < 0 && streamedOnB >= 300) {
          ackedAtKill = acked;
          gatewayB.child.kill('SIGKILL');
        }
      },
    });
    const startedAt = Date.now();
    const sending = sendPipelined(a, {
      conversationId,
      count: STREAM,
      maxInFlight: 32,
      content: (i) => `stream ${i}`,
      clientMessageId: (i) => `stream-${i}`,
      onAck: (n) => (acked = n),
    });
    sending.catch(() => {}); // awaited below; keep an early failure from being unhandled meanwhile

    const died = await gatewayB.exited;
    expect(died.signal).toBe('SIGKILL');
    await b.waitClosed(10_000);
    onB.detach();
    const fromB = streamedOnB;
    // B really died mid-stream: bob had some of the messages, not all, and alice was still sending.
    expect(fromB).toBeGreaterThanOrEqual(300);
    expect(fromB).toBeLessThan(STREAM);
    expect(ackedAtKill).toBeLessThan(STREAM);

    // Bob reconnects to A with his cursor (the last version he applied) while alice goes on.
    const cursor = onB.lastSeen;
    const b2 = await connect(gatewayA, bob, [{ conversationId, lastVersion: cursor }]);
    const onA = followConversation(b2, conversationId, { lastSeen: cursor });

    const acks = await sending;
    const sendMs = Date.now() - startedAt;
    const last = Math.max(...acks.map((x) => x.sequenceNumber));
    await onA.reach(last, 30_000).catch((error: unknown) => {
      const seen = b2.frames.map((f) => (f.body.case === 'event' ? `e${f.body.value.version}/${f.body.value.previousVersion}` : f.body.case === 'syncDone' ? `done${f.body.value.version}` : f.body.case));
      throw new Error(
        `${String(error)}\nstats A ${JSON.stringify(onA.stats)} B ${JSON.stringify(onB.stats)} cursor ${cursor}\nframes on A: ${seen.slice(0, 20).join(' ')} ... ${seen.slice(-40).join(' ')}\n` +
          `${core.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-20).join('\n')}\n` +
          `${gatewayA.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-20).join('\n')}`,
      );
    });
    const doneMs = Date.now() - startedAt;

    const messages = [...onB.applied, ...onA.applied].filter((e) => e.payload.case === 'messageSent');
    const versions = messages.map((e) => e.version);
    const expected = acks.map((x) => x.sequenceNumber);
    // Every message exactly once, in order: the versions are the acked sequence numbers, ascending.
    expect(versions).toEqual([...expected].sort((x, y) => x - y));
    expect(new Set(versions).size).toBe(STREAM);
    expect(messages.map((e) => (e.payload.value as { content: string }).content)).toEqual(Array.from({ length: STREAM }, (_, i) => `stream ${i}`));
    // On the wire, A's replay started right after the cursor: nothing bob had was sent again.
    expect(onA.stats.duplicates).toBe(0);
    console.info(
      `[topology] ${STREAM} messages: B killed after bob applied ${fromB} (alice had ${ackedAtKill} acks); ` +
        `all acked in ${sendMs} ms, bob complete on A after ${doneMs} ms; gaps synced on B ${onB.stats.syncs}, on A ${onA.stats.syncs}`,
    );
    a.close();
    b2.close();
  }, 60_000);
});
