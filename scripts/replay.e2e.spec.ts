import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConversationCommands } from '../commands/conversations.js';
import { conversationStreamId } from '../commands/ids.js';
import { evolve, initialState, type ConversationState } from '../domain/conversation/state.js';
import { parseConversationEvent } from '../domain/conversation/upcast.js';
import type { EventStore, StoredEvent } from '../domain/ports/event-store.js';
import { createSqlEventStore } from '../infra/event-store/sql-event-store.js';
import { createPgliteDatabase } from '../infra/sql/pglite.js';
import type { SqlDatabase } from '../domain/ports/sql.js';
import { createPostgresDatabase } from '../infra/sql/postgres.js';
import { createTempDatabases } from '../infra/testing/postgres.js';
import { createProjections } from '../projections/runtime/registry.js';
import { createProjector } from '../projections/runtime/runtime.js';
import { stateToJson } from './lib/state-json.js';
import { ndjson, parseCsv, runCliProcess } from './testing/run-cli.js';
import { seedConversations, userId } from './testing/seed.js';
import { conversationEvents } from '../projections/runtime/decode.js';

type Exported = { position: number; shard: number; stream_id: string; version: number; type: string; event_id: string; created_at: string; data: unknown };

const fold = (events: { type: string; data: unknown; version: number; metadata?: Record<string, unknown> }[]): ConversationState =>
  events.reduce((state, e) => evolve(state, parseConversationEvent(e), e.version), initialState());

describe('npm run replay against PostgreSQL (2 shards)', () => {
  let dbs: SqlDatabase[];
  let store: EventStore;
  let drop: () => Promise<void>;
  let env: Record<string, string>;
  let conversations: string[];
  let stream: StoredEvent[];
  const admin = userId(0);
  const replay = (...args: string[]) => runCliProcess('replay', args, env);

  beforeAll(async () => {
    const temp = await createTempDatabases('replay_cli', 2);
    drop = temp.drop;
    env = { DATABASE_URL: temp.urls.join(',') };
    dbs = temp.urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 4 }));
    store = await createSqlEventStore({ shards: dbs, ownsDatabases: false });
    conversations = await seedConversations(store, { groups: 6, messagesPerGroup: 30 });
    // Group ids are random, so all six land on one shard one run in 32: add groups until both shards hold some.
    for (let seed = 1; (await Promise.all([0, 1].map((s) => store.headPosition(s)))).includes(0); seed++) {
      conversations.push(...(await seedConversations(store, { groups: 1, messagesPerGroup: 30, seed })));
    }
    stream = await store.readStream(conversationStreamId(conversations[0]!));
  }, 300_000);
  afterAll(async () => {
    await store?.close();
    await Promise.allSettled((dbs ?? []).map((db) => db.close()));
    await drop?.();
  });

  it("a conversation's NDJSON export, folded through the decider, reproduces its current state", async () => {
    const id = conversations[0]!;
    const result = await replay('--conversation', id);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const exported = ndjson(result.stdout) as Exported[];
    // Every event of the stream, in version order, each with exactly the documented fields.
    expect(exported.map((e) => e.version)).toEqual(stream.map((e) => e.version));
    expect(exported.map((e) => Object.keys(e))).toEqual(exported.map(() => ['position', 'shard', 'stream_id', 'version', 'type', 'event_id', 'created_at', 'data']));
    expect(exported).toEqual(stream.map(({ metadata: _m, ...e }) => e));
    expect(new Set(exported.map((e) => e.type))).toEqual(new Set(['ConversationCreated', 'MessageSent', 'ReactionAdded', 'ReactionRemoved', 'Delivered', 'Read', 'MemberRemoved', 'MembersAdded']));

    const replayed = fold(exported);
    // The command side's own view of the conversation now (a fresh command service loads it from the store).
    const commands = createConversationCommands({ store, users: { existing: async (ids) => new Set(ids) }, clock: () => new Date() });
    const view = await commands.describe(admin, id);
    expect(replayed.version).toBe(view.version);
    expect(stateToJson(replayed).members).toEqual(
      view.participants.map((p) => ({ user_id: p.user_id, role: p.role, joined_version: expect.any(Number) })).sort((a, b) => (a.user_id < b.user_id ? -1 : 1)),
    );
    expect(stateToJson(replayed)).toEqual(stateToJson(fold(await store.readStream(conversationStreamId(id)))));
  }, 300_000);

  it('--at-version V prints the state after exactly V events; beyond the end or an unknown conversation is a clear error', async () => {
    const id = conversations[0]!;
    const printed: Record<number, { version: number; client_messages: unknown[] }> = {};
    for (const v of [1, 17, stream.length]) {
      const result = await replay('--conversation', id, '--at-version', String(v));
      expect(result.code).toBe(0);
      printed[v] = JSON.parse(result.stdout) as { version: number; client_messages: unknown[] };
      expect(printed[v]).toEqual(stateToJson(fold(stream.slice(0, v))));
      expect(printed[v]!.version).toBe(v);
    }
    // Version 17 is mid-stream: fewer messages sent with a client_message_id than now.
    expect(printed[17]!.client_messages.length).toBeLessThan(printed[stream.length]!.client_messages.length);

    const beyond = await replay('--conversation', id, '--at-version', String(stream.length + 1));
    expect(beyond.code).toBe(1);
    expect(beyond.stderr).toBe(`replay: --at-version ${stream.length + 1} is beyond the end of conversation ${id} (its stream has ${stream.length} events)\n`);
    expect(beyond.stdout).toBe('');
    const missing = await replay('--conversation', 'no-such-conversation', '--at-version', '1');
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: 'replay: conversation no-such-conversation does not exist\n' });
  }, 300_000);

  it('exports the whole log shard by shard in position order, filtered by type and time, as NDJSON or CSV', async () => {
    const heads = await Promise.all([0, 1].map((s) => store.headPosition(s)));
    expect(heads.every((h) => h > 0)).toBe(true); // both shards hold conversations
    const all = ndjson((await replay()).stdout) as Exported[];
    expect(all.map((e) => [e.shard, e.position])).toEqual([
      ...Array.from({ length: heads[0]! }, (_, i) => [0, i + 1]),
      ...Array.from({ length: heads[1]! }, (_, i) => [1, i + 1]),
    ]);

    const reads = ndjson((await replay('--type', 'Read,MemberRemoved')).stdout) as Exported[];
    expect(reads.length).toBe(all.filter((e) => e.type === 'Read' || e.type === 'MemberRemoved').length);
    expect(reads.length).toBeGreaterThan(6);

    // Time window [since, until): the middle third of the log by created_at.
    const times = all.map((e) => Date.parse(e.created_at)).sort((a, b) => a - b);
    const since = new Date(times[Math.floor(times.length / 3)]!).toISOString();
    const until = new Date(times[Math.floor((2 * times.length) / 3)]!).toISOString();
    const windowed = ndjson((await replay('--since', since, '--until', until)).stdout) as Exported[];
    expect(windowed.map((e) => e.event_id)).toEqual(all.filter((e) => e.created_at >= since && e.created_at < until).map((e) => e.event_id));
    expect(windowed.length).toBeGreaterThan(0);

    // From a position: per shard, or one position for every shard.
    const resumed = ndjson((await replay('--from-position', `0:${heads[0]! - 2},1:${heads[1]!}`)).stdout) as Exported[];
    expect(resumed.map((e) => [e.shard, e.position])).toEqual([
      [0, heads[0]! - 2],
      [0, heads[0]! - 1],
      [0, heads[0]!],
      [1, heads[1]!],
    ]);

    const csv = await replay('--type', 'MessageSent', '--format', 'csv');
    expect(csv.code).toBe(0);
    const rows = parseCsv(csv.stdout);
    expect(rows[0]).toEqual(['position', 'shard', 'stream_id', 'version', 'type', 'event_id', 'created_at', 'data']);
    const messages = all.filter((e) => e.type === 'MessageSent');
    expect(rows.slice(1).map((r) => ({ ...Object.fromEntries(rows[0]!.map((c, i) => [c, r[i]])), data: JSON.parse(r[7]!) as unknown }))).toEqual(
      messages.map((e) => ({ ...Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v)])), data: e.data })),
    );
    // The content holds a comma, quotes and a line break: quoting kept them.
    expect((JSON.parse(rows[1]![7]!) as { content: string }).content).toMatch(/"quoted", comma\nline$/);
  }, 400_000);

  it('writes to --out instead of stdout', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replay-out-'));
    try {
      const file = join(dir, 'events.ndjson');
      const result = await replay('--conversation', conversations[1]!, '--out', file, '--progress');
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/replay \[#+\] 100% /); // progress goes to stderr
      const written = ndjson(await readFile(file, 'utf8')) as Exported[];
      expect(written.map((e) => e.version)).toEqual(Array.from({ length: written.length }, (_, i) => i + 1));
      const missingDir = await replay('--out', join(dir, 'no', 'such', 'dir', 'x.ndjson'));
      expect(missingDir.code).toBe(1);
      expect(missingDir.stderr).toMatch(/^replay: cannot write --out .*ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('bad arguments: a clear message, exit code 2, no stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['--type', 'MessageSnt'], /--type: unknown event type "MessageSnt"/],
      [['--from-position', '-3'], /--from-position/],
      [['--from-position', 'x'], /--from-position must be an integer/],
      [['--since', 'yesterday'], /--since must be an ISO 8601 date/],
      [['--since', '2026-02-01', '--until', '2026-01-01'], /--until must be later than --since/],
      [['--format', 'xml'], /--format must be ndjson or csv/],
      [['--at-version', '3'], /--at-version needs --conversation/],
      [['--conversation', 'c', '--at-version', '0'], /--at-version must be an integer ≥ 1/],
      [['--conversation', 'c', '--at-version', '2', '--type', 'Read'], /cannot be combined with --type/],
      [['--nope'], /Unknown option '--nope'/],
    ];
    for (const [args, message] of cases) {
      const result = await replay(...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/^replay: .*\nusage:/);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.stdout).toBe('');
    }
  }, 400_000);

  it('an old-version event (a v0 MessageSent without media and client_message_id) still replays, folds and projects', async () => {
    const id = conversations[2]!;
    const streamId = conversationStreamId(id);
    const version = await store.streamVersion(streamId);
    const old = { message_id: 'legacy-1', sender_id: userId(2 * 4 + 1), content: 'from the prototype', content_type: 'text', created_at: '2025-01-01T00:00:00.000Z' };
    await store.append(streamId, [{ event_id: crypto.randomUUID(), type: 'MessageSent', data: old, metadata: { schema: 0 } }], { expectedVersion: version });

    const exported = ndjson((await replay('--conversation', id, '--type', 'MessageSent')).stdout) as Exported[];
    expect(exported.at(-1)!.data).toEqual({ ...old, media: null, client_message_id: null });
    const raw = ndjson((await replay('--conversation', id, '--type', 'MessageSent', '--raw')).stdout) as Exported[];
    expect(raw.at(-1)!.data).toEqual(old);
    const state = JSON.parse((await replay('--conversation', id, '--at-version', String(version + 1))).stdout) as { version: number };
    expect(state).toEqual(stateToJson(fold([...(await store.readStream(streamId))])));
    expect(state.version).toBe(version + 1);

    // The command side folds it too: the conversation still takes commands after the old event.
    const commands = createConversationCommands({ store, users: { existing: async (ids) => new Set(ids) }, clock: () => new Date() });
    const next = await commands.sendMessage(userId(2 * 4), id, { content: 'after', content_type: 'text', media: null, client_message_id: null });
    expect(next.message.sequence_number).toBe(version + 2);

    // And the read models project it: the server's projections, from position 0.
    const projector = createProjector({ decode: conversationEvents, store, db: dbs[0]!, projections: createProjections() });
    await projector.ensureSchema();
    await projector.catchUp();
    const { rows } = await dbs[0]!.query(
      `SELECT sequence_number, sender_id, content, media, client_message_id FROM rm_messages WHERE conversation_id = $1 AND message_id = 'legacy-1'`,
      [id],
    );
    expect(rows).toEqual([{ sequence_number: version + 1, sender_id: old.sender_id, content: old.content, media: null, client_message_id: null }]);
  }, 300_000);
});

describe('npm run replay on the embedded database', () => {
  let dataDir: string;
  let conversation: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'replay-embedded-'));
    const db = await createPgliteDatabase({ dataDir: join(dataDir, 'db') });
    const store = await createSqlEventStore({ shards: [db], ownsDatabases: true });
    [conversation] = (await seedConversations(store, { groups: 1, messagesPerGroup: 8 })) as [string];
    await store.close();
  }, 300_000);
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('replays a conversation, and refuses while a server holds the data directory', async () => {
    const env = { CHAT_DATA_DIR: dataDir };
    const ok = await runCliProcess('replay', ['--conversation', conversation], env);
    expect(ok.code).toBe(0);
    const exported = ndjson(ok.stdout) as Exported[];
    expect(exported[0]).toMatchObject({ version: 1, type: 'ConversationCreated', shard: 0 });
    expect(fold(exported).version).toBe(exported.length);
    expect(existsSync(join(dataDir, 'server.pid'))).toBe(false); // it let go of the lock

    // A live process holds the lock, as a running server does.
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await writeFile(join(dataDir, 'server.pid'), `${holder.pid}\n`);
      const refused = await runCliProcess('replay', ['--conversation', conversation], env);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toBe(
        `replay: the embedded database in ${dataDir} is in use by process ${holder.pid}: PGlite allows one process at a time. Stop the server first (or run replay against PostgreSQL with DATABASE_URL).\n`,
      );
    } finally {
      holder.kill('SIGKILL');
      await rm(join(dataDir, 'server.pid'), { force: true });
    }

    const nowhere = await runCliProcess('replay', [], { CHAT_DATA_DIR: join(dataDir, 'missing') });
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/^replay: no embedded database in .*missing/);
  }, 400_000);
});
