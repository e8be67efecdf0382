import { randomBytes, randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { createChatClient, type ChatClient, type FetchLike, type ReceivedEvent } from '../../gateways/sdk/index.js';
import type { MessageCopy } from './check.js';

/**
 * The chaos suite's load: SDK clients (createChatClient, the `ws` package's WebSocket, logged in
 * with username and password so they can renew their session) spread over the two gateways, in
 * direct conversations and groups of 7-8, each client sending at a steady rate with a
 * client_message_id of its own per message (the SDK resends under it until a SendAck comes).
 *
 * The clients find their gateway as behind a round-robin load balancer: `GET /api/v1/realtime`
 * answers each client's home gateway at its first connection, and the next one at each
 * reconnection (a client whose gateway died lands on the other). What every client sends,
 * acknowledged or not, and every MessageSent it emits is recorded, with times, for the checker.
 */

export type ChaosUser = { index: number; userId: string; username: string; password: string; token: string; home: number };
export type ChaosConversation = { conversationId: string; kind: 'direct' | 'group'; members: ChaosUser[] };

export type SendRecord = {
  clientMessageId: string;
  conversationId: string;
  sender: string;
  sentAtMs: number;
  ack: { sequenceNumber: number; atMs: number } | null;
  error: string | null;
};

export type Disconnect = { userId: string; gateway: string; code: number; atMs: number };

type Received = { clientMessageId: string | null; version: number; atMs: number };

export type LoadOptions = {
  restUrl: string;
  wsUrls: readonly string[];
  users: number;
  /** Messages per second per client (spread over its conversations). */
  ratePerClient: number;
  /** Unacknowledged sends a client may hold before it skips a tick (its outbox while the server is away). */
  maxPendingPerClient: number;
};

export type Load = {
  readonly users: readonly ChaosUser[];
  readonly conversations: readonly ChaosConversation[];
  startSending(): void;
  stopSending(): Promise<void>;
  /** `perClient` sends at once from every client connected to `gateway` (index into wsUrls), not awaited. */
  burst(gateway: number, perClient: number): number;
  sends(): readonly SendRecord[];
  pending(): number;
  received(userId: string, conversationId: string): readonly Received[];
  disconnects(): readonly Disconnect[];
  /** Clients not open right now. */
  notOpen(): string[];
  /** Ticks skipped because a client already held maxPendingPerClient unacknowledged sends. */
  skipped(): number;
  close(): Promise<void>;
};

async function rest<T>(baseUrl: string, method: string, path: string, token: string | null, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${path}`, { method, headers, signal: AbortSignal.timeout(30_000), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path.replace(/\/[0-9a-f-]{36}/g, '/:id')}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return (text === '' ? null : JSON.parse(text)) as T;
}

/** GET of a JSON object from the REST API (the checker's history reads). */
export function restGet<T>(baseUrl: string, path: string, token: string): Promise<T> {
  return rest<T>(baseUrl, 'GET', path, token);
}

/** Conversations: a direct one per pair of users (their homes differ), and groups of 7-8 over the same users. */
function plan(users: ChaosUser[]): { direct: [ChaosUser, ChaosUser][]; groups: ChaosUser[][] } {
  const direct: [ChaosUser, ChaosUser][] = [];
  for (let i = 0; i + 1 < users.length; i += 2) direct.push([users[i]!, users[i + 1]!]);
  const groups: ChaosUser[][] = [];
  const size = users.length >= 24 ? 8 : 7;
  for (let i = 0; i + 5 <= users.length; i += size) groups.push(users.slice(i, i + size));
  return { direct, groups };
}

export async function startLoad(o: LoadOptions): Promise<Load> {
  const run = randomBytes(3).toString('hex');
  const users: ChaosUser[] = [];
  // Registration hashes a password each (Argon2id): a few at a time.
  for (let i = 0; i < o.users; i += 4) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(4, o.users - i) }, async (_, k) => {
        const index = i + k;
        const username = `chaos_${run}_${index}`;
        const password = `chaos password ${randomBytes(12).toString('hex')}`;
        const session = await rest<{ user_id: string; token: string }>(o.restUrl, 'POST', '/api/v1/auth/register', null, { username, email: `${username}@example.test`, password });
        return { index, userId: session.user_id, username, password, token: session.token, home: index % o.wsUrls.length };
      }),
    );
    users.push(...batch);
  }
  const { direct, groups } = plan(users);
  const conversations: ChaosConversation[] = [];
  for (const [a, b] of direct) {
    const created = await rest<{ conversation_id: string }>(o.restUrl, 'POST', '/api/v1/conversations', a.token, { participant_id: b.userId });
    conversations.push({ conversationId: created.conversation_id, kind: 'direct', members: [a, b] });
  }
  for (const [g, members] of groups.entries()) {
    const [owner, ...others] = members;
    const created = await rest<{ conversation_id: string }>(o.restUrl, 'POST', '/api/v1/groups', owner!.token, { name: `chaos group ${g}`, member_ids: others.map((m) => m.userId) });
    conversations.push({ conversationId: created.conversation_id, kind: 'group', members });
  }
  const conversationsOf = new Map(users.map((u) => [u.userId, conversations.filter((c) => c.members.includes(u))]));

  const sendRecords: SendRecord[] = [];
  const pendingByUser = new Map<string, number>();
  const receivedBy = new Map<string, Map<string, Received[]>>();
  const disconnectList: Disconnect[] = [];
  const currentGateway = new Map<string, string>();
  const clients = new Map<string, ChatClient>();
  let skippedTicks = 0;

  for (const user of users) {
    let discoveries = 0;
    // The load balancer: the home gateway first, then round robin at each reconnection.
    const balanced: FetchLike = async (input, init) => {
      if (input.endsWith('/api/v1/realtime')) {
        const url = o.wsUrls[(user.home + discoveries++) % o.wsUrls.length]!;
        currentGateway.set(user.userId, url);
        const body = JSON.stringify({ websocket_url: url });
        return { ok: true, status: 200, json: async () => JSON.parse(body) as unknown, text: async () => body };
      }
      return fetch(input, { ...init, signal: AbortSignal.timeout(30_000) });
    };
    const client = createChatClient({
      baseUrl: o.restUrl,
      username: user.username,
      password: user.password,
      deviceId: `chaos-device-${user.index}`,
      WebSocket: WebSocket as unknown as NonNullable<Parameters<typeof createChatClient>[0]['WebSocket']>,
      fetch: balanced,
      reconnect: { minMs: 200, maxMs: 3_000 },
    });
    const mine = new Map<string, Received[]>();
    receivedBy.set(user.userId, mine);
    client.on('event', (e: ReceivedEvent) => {
      if (e.type !== 'MessageSent') return;
      let list = mine.get(e.conversation_id);
      if (list === undefined) mine.set(e.conversation_id, (list = []));
      list.push({ clientMessageId: e.data.client_message_id, version: e.version, atMs: Date.now() });
    });
    client.on('disconnected', (d) => {
      disconnectList.push({ userId: user.userId, gateway: currentGateway.get(user.userId) ?? '?', code: d.code, atMs: Date.now() });
    });
    client.on('error', () => {
      // reported non-fatal problems (a refused ack during an outage): the checker judges the outcome
    });
    clients.set(user.userId, client);
  }
  await Promise.all(
    [...clients.values()].map((c) =>
      Promise.race([c.connect(), new Promise((_, fail) => setTimeout(() => fail(new Error('a client did not connect within 30 s')), 30_000).unref())]),
    ),
  );
  for (const user of users) for (const c of conversationsOf.get(user.userId)!) clients.get(user.userId)!.track(c.conversationId, 0);

  function sendOne(user: ChaosUser, conversation: ChaosConversation): void {
    const client = clients.get(user.userId)!;
    const record: SendRecord = { clientMessageId: randomUUID(), conversationId: conversation.conversationId, sender: user.userId, sentAtMs: Date.now(), ack: null, error: null };
    sendRecords.push(record);
    pendingByUser.set(user.userId, (pendingByUser.get(user.userId) ?? 0) + 1);
    client.send(conversation.conversationId, `chaos message ${sendRecords.length}`, { clientMessageId: record.clientMessageId }).then(
      (ack) => {
        record.ack = { sequenceNumber: ack.sequenceNumber, atMs: Date.now() };
      },
      (error: unknown) => {
        record.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      },
    ).finally(() => pendingByUser.set(user.userId, (pendingByUser.get(user.userId) ?? 1) - 1));
  }

  const timers: ReturnType<typeof setTimeout>[] = [];
  let sending = false;
  const periodMs = 1_000 / o.ratePerClient;
  function tick(user: ChaosUser): void {
    if (!sending) return;
    const mine = conversationsOf.get(user.userId)!;
    if ((pendingByUser.get(user.userId) ?? 0) >= o.maxPendingPerClient) skippedTicks++;
    else if (mine.length > 0) sendOne(user, mine[Math.floor(Math.random() * mine.length)]!);
    timers[user.index] = setTimeout(() => tick(user), periodMs * (0.75 + Math.random() / 2));
  }

  return {
    users,
    conversations,
    startSending() {
      if (sending) return;
      sending = true;
      for (const user of users) timers[user.index] = setTimeout(() => tick(user), Math.random() * periodMs);
    },
    async stopSending() {
      sending = false;
      for (const t of timers) if (t !== undefined) clearTimeout(t);
    },
    burst(gateway, perClient) {
      let n = 0;
      for (const user of users) {
        if (currentGateway.get(user.userId) !== o.wsUrls[gateway]) continue;
        const mine = conversationsOf.get(user.userId)!;
        for (let k = 0; k < perClient && mine.length > 0; k++, n++) sendOne(user, mine[k % mine.length]!);
      }
      return n;
    },
    sends: () => sendRecords,
    pending: () => sendRecords.filter((r) => r.ack === null && r.error === null).length,
    received: (userId, conversationId) => receivedBy.get(userId)?.get(conversationId) ?? [],
    disconnects: () => disconnectList,
    notOpen: () => users.filter((u) => clients.get(u.userId)!.state !== 'open').map((u) => u.userId),
    skipped: () => skippedTicks,
    async close() {
      sending = false;
      for (const t of timers) if (t !== undefined) clearTimeout(t);
      await Promise.allSettled([...clients.values()].map((c) => c.close()));
    },
  };
}

/** The received MessageSent events of a member as the checker takes them. */
export function copies(list: readonly Received[]): MessageCopy[] {
  return list.map((r) => ({ clientMessageId: r.clientMessageId, version: r.version }));
}
