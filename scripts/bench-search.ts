/**
 * Search benchmark on PostgreSQL: a generated chat corpus goes through the event store and the
 * search projection, then realistic searches run as random users.
 *
 *   npm run bench:search -- [--messages 1000000] [--users 5000] [--groups 2000] [--directs 20000]
 *                           [--queries 2000] [--batch 5000] [--seed 42] [--shards 2]
 *
 * Corpus: words drawn from a 50,000-word vocabulary with a Zipf distribution (s = 1.07), 2 to 25
 * words per message; direct chats and groups (3 to 150 members, sizes skewed small); message
 * counts per conversation skewed (a few very busy groups, many quiet chats); messages spread over a
 * year; one group in ten gains a member half-way and loses one three quarters of the way.
 * Phases: append everything to the store (not measured: see bench:store), index it with the search
 * projection from position 0 (index_docs_per_s), ANALYZE, run queries through the same code as the
 * REST API minus HTTP (membership scope + index query + snippets), then rebuild the projection
 * (reset + replay from 0: events_per_s), then build the conversations read model from 0 over the
 * same log (a third JSON line). PostgreSQL comes from DATABASE_URL, else the local server:
 * a throw-away database, dropped at the end. Progress on stderr; the last three lines on stdout are
 * JSON objects.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { random } from '../domain/testing/random.js';
import { createPostgresEventStore } from '../infra/event-store/postgres.js';
import type { NewEvent } from '../domain/ports/event-store.js';
import { createPostgresSearchIndex } from '../infra/search/postgres.js';
import type { SqlClient } from '../domain/ports/sql.js';
import { createPostgresDatabase } from '../infra/sql/postgres.js';
import { createTestDatabases, DEFAULT_SERVER_URL } from '../infra/sql/test-databases.js';
import { CONVERSATIONS_PROJECTION, conversationsProjection } from '../projections/conversations/projection.js';
import { createProjector } from '../projections/runtime/runtime.js';
import { createSearchProjection, SEARCH_PROJECTION } from '../projections/search/projection.js';
import { createSearchQueries, type UserSearch } from '../projections/search/queries.js';
import { cpuMsOf } from './lib/proc.js';
import { conversationEvents } from '../projections/runtime/decode.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    users: { type: 'string', default: '5000' },
    groups: { type: 'string', default: '2000' },
    directs: { type: 'string', default: '20000' },
    queries: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '5000' },
    seed: { type: 'string', default: '42' },
    /** Event-store shards (databases on the same server); the read model lives in the first. */
    shards: { type: 'string', default: '2' },
  },
});
function count(name: keyof typeof args, min = 1): number {
  const value = Number(args[name]);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}, got ${args[name]}`);
  return value;
}
const settings = {
  messages: count('messages'),
  users: count('users', 10),
  groups: count('groups'),
  directs: count('directs'),
  queries: count('queries'),
  batch: count('batch'),
  seed: count('seed', 0),
  shards: count('shards'),
};
// process.env is read here only: this script is an entry point.
const serverUrl = (process.env.DATABASE_URL ?? DEFAULT_SERVER_URL).split(',')[0]!.trim();
const log = (line: string) => process.stderr.write(`${line}\n`);
/** The machine is shared: the 1-minute load average says how much else ran meanwhile. */
const load = () => `load average ${loadavg()[0]!.toFixed(1)} on 2 cores`;

const rand = random(settings.seed).next; // seeded: runs generate the same corpus
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

/** Samples ranks 0..n-1 with P(rank k) ∝ 1 / (k+1)^s. */
function zipf(n: number, s: number) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / (k + 1) ** s;
  return () => {
    const x = rand() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

// Vocabulary: pronounceable pseudo-words, some with accents, unique.
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'za', 'pe', 'do', 'gu', 'ha', 'je', 'bi', 'fo', 'ché', 'ná', 'tr', 'st', 'on', 'el', 'ar', 'is'];
const VOCABULARY_SIZE = 50_000;
const vocabulary: string[] = [];
{
  const seen = new Set<string>();
  while (vocabulary.length < VOCABULARY_SIZE) {
    let w = '';
    const n = vocabulary.length < 200 ? int(1, 2) : int(2, 4);
    for (let i = 0; i < n; i++) w += SYLLABLES[int(0, SYLLABLES.length - 1)]!;
    if (!seen.has(w)) {
      seen.add(w);
      vocabulary.push(w);
    }
  }
}
const nextWord = zipf(VOCABULARY_SIZE, 1.07);
function sentence(): string {
  const n = int(2, 25);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(vocabulary[nextWord()]!);
  if (rand() < 0.3) words[0] = words[0]![0]!.toUpperCase() + words[0]!.slice(1);
  return words.join(' ') + (rand() < 0.5 ? '.' : rand() < 0.5 ? '?' : '');
}

// Conversations: members, message counts, membership changes.
type Conversation = { id: string; kind: 'direct' | 'group'; members: string[]; messages: number; joiner: string | null; leaver: string | null };
const user = (i: number) => `u${i}`;
const pickUser = zipf(settings.users, 0.6);
const conversations: Conversation[] = [];
const groupSize = zipf(148, 1.2);
for (let g = 0; g < settings.groups; g++) {
  const size = 3 + groupSize();
  const members = new Set<string>();
  while (members.size < Math.min(size, settings.users)) members.add(user(pickUser()));
  const churn = rand() < 0.1 && size > 3;
  const list = [...members];
  let joiner: string | null = null;
  if (churn) for (let tries = 0; tries < 20 && joiner === null; tries++) {
    const candidate = user(int(0, settings.users - 1));
    if (!members.has(candidate)) joiner = candidate;
  }
  conversations.push({ id: randomUUID(), kind: 'group', members: list, messages: 0, joiner, leaver: churn ? list[list.length - 1]! : null });
}
const directPairs = new Set<string>();
while (conversations.length < settings.groups + settings.directs) {
  const a = user(pickUser());
  const b = user(int(0, settings.users - 1));
  const key = a < b ? `${a}|${b}` : `${b}|${a}`;
  if (a === b || directPairs.has(key)) continue;
  directPairs.add(key);
  conversations.push({ id: randomUUID(), kind: 'direct', members: [a, b], messages: 0, joiner: null, leaver: null });
}
// Busy conversations: Zipf over a shuffled order (groups weigh 4x more when drawn).
const activity = zipf(conversations.length, 0.9);
const order = conversations.map((_, i) => i).sort(() => rand() - 0.5);
for (let m = 0; m < settings.messages; ) {
  const c = conversations[order[activity()]!]!;
  if (c.kind === 'direct' && rand() < 0.75) continue;
  c.messages++;
  m++;
}

const YEAR_START = Date.UTC(2025, 0, 1);
const YEAR_MS = 365 * 86_400_000;

function* eventsOf(c: Conversation): Generator<NewEvent> {
  const start = YEAR_START + Math.floor(rand() * YEAR_MS * 0.2);
  const span = YEAR_START + YEAR_MS - start;
  const times = Array.from({ length: c.messages }, () => start + Math.floor(rand() * span)).sort((a, b) => a - b);
  const at = (ms: number) => new Date(ms).toISOString();
  const event = (type: string, data: unknown): NewEvent => ({ event_id: randomUUID(), type, data, metadata: { conversation_id: c.id } });
  yield event('ConversationCreated', {
    conversation_id: c.id,
    kind: c.kind,
    created_by: c.members[0],
    members: c.members,
    name: c.kind === 'group' ? 'group' : null,
    description: null,
    created_at: at(start),
  });
  const joinAt = Math.floor(c.messages / 2);
  const leaveAt = Math.floor((c.messages * 3) / 4);
  const senders = c.leaver === null ? c.members : c.members.filter((m) => m !== c.leaver);
  for (let i = 0; i < c.messages; i++) {
    const t = times[i]!;
    if (c.joiner !== null && i === joinAt) yield event('MembersAdded', { user_ids: [c.joiner], added_by: c.members[0], added_at: at(t) });
    if (c.leaver !== null && i === leaveAt) yield event('MemberRemoved', { user_id: c.leaver, removed_by: c.leaver, removed_at: at(t) });
    const messageId = randomUUID();
    const sender = c.joiner !== null && i > joinAt && rand() < 0.2 ? c.joiner : senders[int(0, senders.length - 1)]!;
    yield event('MessageSent', { message_id: messageId, sender_id: sender, content: sentence(), content_type: 'text', media: null, client_message_id: null, created_at: at(t) });
  }
}

/**
 * CPU time (ms) used so far by this process and by the PostgreSQL backends serving this
 * database (read from /proc: the server must be local), so the cost per document can be told
 * apart from what other work on the shared machine took. Backends that exited are not counted.
 */
/** Every shard's database: their backends' CPU counts. */
let shardDatabases: string[] = [];

async function cpuMs(db: SqlClient): Promise<{ node: number; postgres: number }> {
  const { rows } = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])', [shardDatabases]);
  const usage = process.cpuUsage();
  return { node: (usage.user + usage.system) / 1000, postgres: cpuMsOf(rows.map((r) => r.pid)) };
}
const cpuPer1000 = (before: { node: number; postgres: number }, after: { node: number; postgres: number }, n: number) =>
  `CPU per 1,000: node ${Math.round(((after.node - before.node) * 1000) / n)} ms, postgres ${Math.round(((after.postgres - before.postgres) * 1000) / n)} ms`;

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function main() {
  const dbs = await createTestDatabases(settings.shards, { prefix: 'bench_search', serverUrl });
  shardDatabases = dbs.names;
  const store = await createPostgresEventStore({ urls: dbs.urls, poolSize: 8, applicationName: 'bench-search-store' });
  const db = createPostgresDatabase({ connectionString: dbs.urls[0]!, max: 4, applicationName: 'bench-search' });
  try {
    // 1. Append the corpus, conversation by conversation, in chunks, 8 in flight.
    let t0 = performance.now();
    let appended = 0;
    let next = 0;
    const CHUNK = 1000;
    const worker = async () => {
      for (;;) {
        const c = conversations[next++];
        if (!c) return;
        let version = 0;
        let chunk: NewEvent[] = [];
        for (const e of eventsOf(c)) {
          chunk.push(e);
          if (chunk.length === CHUNK) {
            version = (await store.append(`conversation-${c.id}`, chunk, { expectedVersion: version })).nextExpectedVersion;
            appended += chunk.length;
            chunk = [];
          }
        }
        if (chunk.length > 0) {
          await store.append(`conversation-${c.id}`, chunk, { expectedVersion: version });
          appended += chunk.length;
        }
        if (next % 2000 === 0) log(`appended ${appended} events (${conversations.length - next} conversations left)`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    let head = 0;
    for (let shard = 0; shard < settings.shards; shard++) head += await store.headPosition(shard);
    log(`corpus: ${settings.messages} messages, ${head} events, ${conversations.length} conversations, ${settings.users} users; appended in ${round((performance.now() - t0) / 1000)} s`);

    // 2. Index with the search projection from position 0.
    const index = createPostgresSearchIndex({ db });
    const projector = createProjector({ store, db, projections: [createSearchProjection({ index })], batchSize: settings.batch, decode: conversationEvents });
    await projector.ensureSchema();
    const progress = setInterval(() => {
      void projector.status().then((s) => log(`indexing: ${s.reduce((n, x) => n + x.position, 0)} / ${head} events`));
    }, 10_000);
    t0 = performance.now();
    let cpu0 = await cpuMs(db);
    await projector.catchUp();
    const indexSeconds = (performance.now() - t0) / 1000;
    clearInterval(progress);
    const docs = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM search_messages')).rows[0]!.n);
    const indexDocsPerS = docs / indexSeconds;
    log(`indexed ${docs} documents in ${round(indexSeconds)} s: ${Math.round(indexDocsPerS)} docs/s (${Math.round(head / indexSeconds)} events/s); ${load()}`);
    log(`  indexing ${cpuPer1000(cpu0, await cpuMs(db), docs)} documents`);
    await db.query('VACUUM ANALYZE search_messages');
    await db.query('ANALYZE search_members');

    // 3. Queries as random users.
    const queries = createSearchQueries({ db, index, cursorKey: randomBytes(32) });
    const byUser = new Map<string, Conversation[]>();
    for (const c of conversations) for (const m of c.members) (byUser.get(m) ?? byUser.set(m, []).get(m)!).push(c);
    const kinds = ['common', 'medium', 'rare', 'two words', 'common + sender', 'medium + 30 days', 'rare + sender + 90 days'] as const;
    const latencies: number[] = [];
    const perKind = new Map<string, number[]>();
    let hits = 0;
    const term = (kind: 'common' | 'medium' | 'rare') => vocabulary[kind === 'common' ? int(0, 49) : kind === 'medium' ? int(50, 2_000) : int(2_001, VOCABULARY_SIZE - 1)]!;
    const users = [...byUser.keys()];
    for (let i = 0; i < settings.queries + 100; i++) {
      const me = users[int(0, users.length - 1)]!;
      const kind = kinds[i % kinds.length]!;
      const mine = byUser.get(me)!;
      const peer = () => {
        const c = mine[int(0, mine.length - 1)]!;
        return c.members[int(0, c.members.length - 1)]!;
      };
      const window = (days: number) => {
        const from = YEAR_START + Math.floor(rand() * (YEAR_MS - days * 86_400_000));
        return { from: new Date(from).toISOString(), until: new Date(from + days * 86_400_000).toISOString() };
      };
      const q: UserSearch =
        kind === 'common' ? { userId: me, text: term('common'), limit: 20 }
        : kind === 'medium' ? { userId: me, text: term('medium'), limit: 20 }
        : kind === 'rare' ? { userId: me, text: term('rare'), limit: 20 }
        : kind === 'two words' ? { userId: me, text: `${term('common')} ${term('medium')}`, limit: 20 }
        : kind === 'common + sender' ? { userId: me, text: term('common'), senderId: peer(), limit: 20 }
        : kind === 'medium + 30 days' ? { userId: me, text: term('medium'), ...window(30), limit: 20 }
        : { userId: me, text: term('rare'), senderId: peer(), ...window(90), limit: 20 };
      const t = performance.now();
      const result = await queries.search(q);
      const ms = performance.now() - t;
      if (i < 100) continue; // warm-up
      hits += result.hits.length;
      latencies.push(ms);
      (perKind.get(kind) ?? perKind.set(kind, []).get(kind)!).push(ms);
    }
    latencies.sort((a, b) => a - b);
    for (const [kind, list] of perKind) {
      list.sort((a, b) => a - b);
      log(`  ${kind.padEnd(24)} p50 ${round(percentile(list, 50), 2)} ms  p99 ${round(percentile(list, 99), 2)} ms  max ${round(list[list.length - 1]!, 2)} ms`);
    }
    log(`queries: ${latencies.length}, ${round(hits / latencies.length)} hits per page on average; ${load()}`);

    // 4. Rebuild: reset and replay from position 0.
    t0 = performance.now();
    cpu0 = await cpuMs(db);
    await projector.reset(SEARCH_PROJECTION);
    await projector.catchUp();
    const rebuildSeconds = (performance.now() - t0) / 1000;
    log(`rebuilt in ${round(rebuildSeconds)} s; ${load()}; ${cpuPer1000(cpu0, await cpuMs(db), head)} events`);

    // 5. The conversations read model (inbox, history, status) built from position 0 over the same log.
    const readModel = createProjector({ decode: conversationEvents, store, db, projections: [conversationsProjection], batchSize: 2_000 });
    await readModel.ensureSchema();
    t0 = performance.now();
    cpu0 = await cpuMs(db);
    await readModel.catchUp();
    const conversationsSeconds = (performance.now() - t0) / 1000;
    log(`conversations read model built in ${round(conversationsSeconds)} s; ${load()}; ${cpuPer1000(cpu0, await cpuMs(db), head)} events`);

    process.stdout.write(
      `${JSON.stringify({ bench: 'search', adapter: 'postgres', shards: settings.shards, docs, index_docs_per_s: Math.round(indexDocsPerS), query_p50_ms: round(percentile(latencies, 50), 2), query_p99_ms: round(percentile(latencies, 99), 2) })}\n`,
    );
    process.stdout.write(`${JSON.stringify({ bench: 'rebuild', projection: SEARCH_PROJECTION, adapter: 'postgres', shards: settings.shards, events: head, seconds: round(rebuildSeconds, 2), events_per_s: Math.round(head / rebuildSeconds) })}\n`);
    process.stdout.write(`${JSON.stringify({ bench: 'rebuild', projection: CONVERSATIONS_PROJECTION, adapter: 'postgres', shards: settings.shards, events: head, seconds: round(conversationsSeconds, 2), events_per_s: Math.round(head / conversationsSeconds) })}\n`);
  } finally {
    await db.close();
    await store.close();
    await dbs.drop();
  }
}

await main();
