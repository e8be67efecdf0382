/**
 * Event store throughput benchmark: single-event MessageSent appends from many concurrent
 * conversations, each conversation appending sequentially with its expected version.
 *
 *   npm run bench:store -- [--seconds 10] [--conversations 2000] [--concurrency 500]
 *                          [--max-appends 2000000] [--warmup 1] [--repeat 1]
 *                          [--max-batch 1000] [--pipeline <store default>]
 *                          [--only postgres:group-commit,postgres:one-tx-per-append,pglite:group-commit]
 *
 * Each run lasts --warmup + --seconds (or stops at --max-appends measured appends); latency is per
 * append call, measured after the warm-up. PostgreSQL comes from DATABASE_URL (comma-separated =
 * shards), else postgres://postgres@127.0.0.1:5432/postgres: every run gets fresh databases
 * (chat_bench_<pid>_<random>_0 on each server), dropped when it ends. PGlite runs in memory.
 * Progress goes to stderr; the last lines on stdout are one JSON object per adapter and mode, the
 * median of --repeat runs.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createTestDatabases, DEFAULT_SERVER_URL, type TestDatabases } from '../infra/sql/test-databases.js';
import { createPgliteEventStore } from '../infra/event-store/pglite.js';
import { createPostgresEventStore } from '../infra/event-store/postgres.js';
import type { AppendMode, SqlEventStore } from '../infra/event-store/sql-event-store.js';
import { WrongExpectedVersionError } from '../domain/ports/event-store.js';
import { uuidV7 } from '../commands/ids.js';
import { cpuMsOf } from './lib/proc.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    conversations: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '500' },
    'max-appends': { type: 'string', default: '2000000' },
    warmup: { type: 'string', default: '1' },
    'max-batch': { type: 'string', default: '1000' },
    pipeline: { type: 'string' },
    repeat: { type: 'string', default: '1' },
    only: { type: 'string', default: 'postgres:group-commit,postgres:one-tx-per-append,pglite:group-commit' },
  },
});

function positive(name: string, text: string | undefined, integer = true): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`--${name} must be a ${integer ? 'non-negative integer' : 'non-negative number'}, got ${text}`);
  }
  return value;
}

const settings = {
  seconds: positive('seconds', args.seconds, false),
  conversations: Math.max(1, positive('conversations', args.conversations)),
  concurrency: Math.max(1, positive('concurrency', args.concurrency)),
  maxAppends: positive('max-appends', args['max-appends']),
  warmup: positive('warmup', args.warmup, false),
  maxBatch: Math.max(1, positive('max-batch', args['max-batch'])),
  pipeline: args.pipeline === undefined ? undefined : Math.max(1, positive('pipeline', args.pipeline)),
  repeat: Math.max(1, positive('repeat', args.repeat)),
};
const runs = (args.only ?? '').split(',').map((entry) => {
  const [adapter, mode] = entry.trim().split(':');
  if ((adapter !== 'postgres' && adapter !== 'pglite') || (mode !== 'group-commit' && mode !== 'one-tx-per-append')) {
    throw new Error(`--only: unknown run ${entry}`);
  }
  return { adapter, mode } as const;
});
// process.env is read here only: this script is an entry point.
const serverUrls = (process.env.DATABASE_URL ?? DEFAULT_SERVER_URL)
  .split(',')
  .map((url) => url.trim())
  .filter((url) => url !== '');

const log = (line: string) => process.stderr.write(`${line}\n`);

/** ~150 characters of message text. */
const CONTENT =
  'Hey! Are we still on for the design review tomorrow at 10? I pushed the new onboarding flow, ' +
  'would love your thoughts on the empty states 🙏';

function messageSent(conversationId: string, senderId: string) {
  const messageId = randomUUID();
  const now = new Date().toISOString();
  return {
    event_id: uuidV7(), // as the command handlers make them (commands/ids.ts)
    type: 'MessageSent',
    data: {
      message_id: messageId,
      sender_id: senderId,
      content: CONTENT,
      content_type: 'text',
      media: null,
      client_message_id: `cm-${messageId.slice(0, 18)}`,
      created_at: now,
    },
    metadata: {
      command_id: randomUUID(),
      correlation_id: randomUUID(),
      user_id: senderId,
      device_id: 'ios-7c1f2e',
      request_id: `req-${messageId.slice(0, 8)}`,
      conversation_id: conversationId,
      at: now,
    },
  };
}

type Measured = { eventsPerS: number; p50: number; p99: number; appends: number; totalAppends: number; transactions: number; conflicts: number };

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function drive(store: SqlEventStore, label: string): Promise<Measured> {
  const versions = new Int32Array(settings.conversations);
  const idle: number[] = Array.from({ length: settings.conversations }, (_, i) => i);
  const users = Array.from({ length: 50 }, (_, i) => `user-${i}`);
  const latencies: number[] = [];
  const start = performance.now();
  const warmupEnd = start + settings.warmup * 1000;
  const end = warmupEnd + settings.seconds * 1000;
  let measuredAppends = 0;
  let totalAppends = 0;
  let conflicts = 0;
  let measureStart = Number.NaN;
  let measureEnd = Number.NaN;
  let txAtMeasureStart = 0;
  let lastReport = start;
  let lastReportCount = 0;

  const worker = async () => {
    for (;;) {
      const now = performance.now();
      if (now >= end || measuredAppends >= settings.maxAppends) return;
      const conversation = idle.shift();
      if (conversation === undefined) return; // more workers than conversations
      const streamId = `conversation-${conversation}`;
      const event = messageSent(streamId, users[conversation % users.length]!);
      const t0 = performance.now();
      try {
        await store.append(streamId, [event], { expectedVersion: versions[conversation]! });
        versions[conversation]! += 1;
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError)) throw error;
        conflicts += 1;
        versions[conversation] = error.actualVersion;
      }
      const t1 = performance.now();
      idle.push(conversation);
      totalAppends += 1;
      if (t0 >= warmupEnd) {
        if (Number.isNaN(measureStart)) {
          measureStart = t0;
          txAtMeasureStart = store.stats().transactions;
        }
        latencies.push(t1 - t0);
        measuredAppends += 1;
        measureEnd = t1;
      }
      if (t1 - lastReport >= 1000) {
        log(`  ${label}: ${Math.round(((totalAppends - lastReportCount) * 1000) / (t1 - lastReport))} appends/s`);
        lastReport = t1;
        lastReportCount = totalAppends;
      }
    }
  };
  await Promise.all(Array.from({ length: settings.concurrency }, worker));
  const sorted = Float64Array.from(latencies).sort();
  const seconds = (measureEnd - measureStart) / 1000;
  return {
    eventsPerS: seconds > 0 ? measuredAppends / seconds : 0,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    appends: measuredAppends,
    totalAppends,
    transactions: store.stats().transactions - txAtMeasureStart,
    conflicts,
  };
}

/** CPU seconds (user + system) used so far by the server processes serving `databases` (Linux /proc; 0 elsewhere). */
async function serverCpuSeconds(databases: { server: string; name: string }[]): Promise<number> {
  let ms = 0;
  for (const { server, name } of databases) {
    const client = new pg.Client({ connectionString: server });
    await client.connect();
    try {
      const { rows } = await client.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [name]);
      ms += cpuMsOf(rows.map((r) => r.pid)); // 0 for backends not local or just exited
    } finally {
      await client.end();
    }
  }
  return ms / 1000;
}

const created: TestDatabases[] = [];
async function dropCreated(): Promise<void> {
  for (const databases of created.splice(0)) {
    await databases.drop().catch((error: unknown) => log(`could not drop ${databases.names.join(', ')}: ${String(error)}`));
  }
}
process.once('SIGINT', () => {
  void dropCreated().finally(() => process.exit(130));
});

type Opened = { store: SqlEventStore; databases: { server: string; name: string }[] };

async function openStore(adapter: 'postgres' | 'pglite', mode: AppendMode): Promise<Opened> {
  const tuning = { mode, maxBatch: settings.maxBatch, pipeline: settings.pipeline };
  if (adapter === 'pglite') return { store: await createPgliteEventStore(tuning), databases: [] };
  const urls: string[] = [];
  const databases: { server: string; name: string }[] = [];
  for (const server of serverUrls) {
    const shard = await createTestDatabases(1, { prefix: `chat_bench_${process.pid}`, serverUrl: server });
    created.push(shard);
    urls.push(shard.urls[0]!);
    databases.push({ server, name: shard.names[0]! });
  }
  const store = await createPostgresEventStore({ urls, ...tuning, poolSize: 10, applicationName: 'bench-store' });
  return { store, databases };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const results: string[] = [];
try {
  log(
    `bench-store: ${settings.seconds}s (+${settings.warmup}s warm-up) per run, ${settings.conversations} conversations, ` +
      `concurrency ${settings.concurrency}, ${serverUrls.length} postgres shard(s), ${settings.repeat} run(s) each (median reported)`,
  );
  for (const { adapter, mode } of runs) {
    const label = `${adapter} ${mode}`;
    const measured: Measured[] = [];
    for (let repeat = 0; repeat < settings.repeat; repeat++) {
      const { store, databases } = await openStore(adapter, mode);
      try {
        const cpu0 = process.cpuUsage();
        const server0 = adapter === 'postgres' ? await serverCpuSeconds(databases) : 0;
        const m = await drive(store, label);
        const cpu = process.cpuUsage(cpu0);
        const serverCpu = adapter === 'postgres' ? (await serverCpuSeconds(databases)) - server0 : 0;
        const perK = (seconds: number) => ((seconds * 1e6) / Math.max(1, m.totalAppends)).toFixed(1);
        log(
          `${label}: ${Math.round(m.eventsPerS)} events/s, p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms, ` +
            `${m.appends} appends in ${m.transactions} transactions (${(m.appends / Math.max(1, m.transactions)).toFixed(1)} per tx), ` +
            `${m.conflicts} conflicts; CPU per 1000 appends: this process ${perK((cpu.user + cpu.system) / 1e6)} ms` +
            (adapter === 'postgres' ? `, postgres backends ${perK(serverCpu)} ms` : ''),
        );
        measured.push(m);
      } finally {
        await store.close();
        await dropCreated();
      }
    }
    results.push(
      JSON.stringify({
        bench: 'store',
        adapter,
        mode,
        events_per_s: Math.round(median(measured.map((m) => m.eventsPerS))),
        p50_ms: Number(median(measured.map((m) => m.p50)).toFixed(2)),
        p99_ms: Number(median(measured.map((m) => m.p99)).toFixed(2)),
      }),
    );
  }
} finally {
  await dropCreated();
}
process.stdout.write(`${results.join('\n')}\n`);
