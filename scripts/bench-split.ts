import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { z } from 'zod';
import { createSharedNamespace } from '../gateways/testing/shared-services.js';
import { startServerProcess, type ServerProcess } from '../gateways/testing/server-process.js';
import { integerOption, parseCommandLine, UsageError } from './lib/cli.js';
import { cpuMsOf, pidsNamed } from './lib/proc.js';

/**
 * The durable split topology of BENCHMARKS.md, set up, measured and taken down in one command:
 *
 *   npm run bench:split -- --rates 2000,3000 [--runs 3] [--clients 40] [--duration 12]
 *                          [--warmup 1500] [--warmup-duration 6] [--shards 1]
 *                          [--sample-after 2] [--sample-for 8] [--verbose] [--profile DIR]
 *
 * Each run gets fresh throw-away databases, a NATS prefix and a Redis key prefix of its own on the
 * machine's services (NATS_URL / REDIS_URL / TEST_POSTGRES_URL as the tests use them), starts a
 * core process (api, projector, relay, delivery, push) and a gateway process as an operator runs
 * them, runs `bench:ws` once at the warm-up rate and once at the measured rate against them, and
 * reads from /proc the CPU used by each part of the machine over a window of the measured run
 * (from `--sample-after` s after its traffic started, for `--sample-for` s): the two server
 * processes, PostgreSQL, NATS,
 * Redis and the load generator, and from pg_stat_database the commits, the rows written and the
 * rows fetched per delivered message (`pg_commits_per_message`, `pg_rows_per_message`,
 * `pg_rows_fetched_per_message`). It prints one JSON line per run, then one per rate with the
 * medians (the machines here are shared and noisy: compare medians, and alternate codes run by
 * run when comparing two). `--verbose` passes on what the measured bench:ws says on stderr (the
 * send -> SendAck latency; by second of the run the delivery and SendAck latencies and its own
 * CPU; its event-loop delay);
 * `--profile DIR` runs the core and the gateway under `node --cpu-prof`, writing their profiles
 * to DIR/<rate>-<run>-core and DIR/<rate>-<run>-gateway when they stop.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

type PgCounters = { commits: number; rows: number; read: number };

/**
 * The run's databases' commits, written rows (inserted + updated + deleted) and rows fetched so far, from
 * pg_stat_database. PostgreSQL publishes a busy backend's counts about once a second, so over the
 * sample window they are good to a few percent: enough to see whether two codes send the database
 * more work per message.
 */
async function pgCounters(url: string, names: string[]): Promise<PgCounters> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<PgCounters>(
      'select coalesce(sum(xact_commit), 0)::float8 as commits, coalesce(sum(tup_inserted + tup_updated + tup_deleted), 0)::float8 as rows, coalesce(sum(tup_fetched), 0)::float8 as read from pg_stat_database where datname = any($1)',
      [names],
    );
    return rows[0] ?? { commits: 0, rows: 0, read: 0 };
  } finally {
    await client.end();
  }
}

const { values: args } = parseCommandLine(process.argv.slice(2), {
  rates: { type: 'string', default: '2000' },
  runs: { type: 'string', default: '3' },
  clients: { type: 'string', default: '40' },
  duration: { type: 'string', default: '12' },
  warmup: { type: 'string', default: '1500' },
  'warmup-duration': { type: 'string', default: '6' },
  shards: { type: 'string', default: '1' },
  'sample-after': { type: 'string', default: '2' },
  'sample-for': { type: 'string', default: '8' },
  verbose: { type: 'boolean', default: false },
  profile: { type: 'string' },
});

/** bench:ws's result line: the fields used here are checked, the others passed through. */
const BenchResult = z.looseObject({ msgs_per_s: z.number(), p50_ms: z.number(), p99_ms: z.number(), delivered: z.number(), expected: z.number() });
type BenchResult = z.infer<typeof BenchResult>;
type Cpu = Record<'core' | 'gateway' | 'postgres' | 'nats' | 'redis' | 'load', number>;

/**
 * Runs bench:ws as a child process; its last stdout line is its JSON result. `onTraffic` is called
 * once it starts sending: it logs "created N conversations" right before (after registering users
 * and connecting clients, which take seconds of their own).
 */
function benchWs(argv: string[], onTraffic: (pid: number) => void = () => {}, verbose = false): Promise<BenchResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench-ws.ts', ...argv], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sending = false;
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (!sending && /^created \d+ conversations/m.test(stderr)) {
      sending = true;
      onTraffic(child.pid!);
    }
  });
  return new Promise((done, fail) =>
    child.on('exit', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (verbose) process.stderr.write(stderr);
      if (code !== 0 || !last.startsWith('{')) return fail(new Error(`bench:ws ${argv.join(' ')} failed (exit ${code}):\n${stderr.slice(-2000)}`));
      let value: unknown;
      try {
        value = JSON.parse(last);
      } catch {
        value = undefined;
      }
      const parsed = BenchResult.safeParse(value);
      if (!parsed.success) return fail(new Error(`bench:ws printed an unexpected result: ${last}`));
      done(parsed.data);
    }),
  );
}

type RunOptions = {
  clients: number;
  duration: number;
  warmup: number;
  warmupDuration: number;
  shards: number;
  sampleAfter: number;
  sampleFor: number;
  verbose: boolean;
  profile: string | undefined;
};

async function oneRun(rate: number, run: number, o: RunOptions) {
  const namespace = await createSharedNamespace('bench_split', o.shards);
  const common = {
    ...namespace.env,
    JWT_SECRET: 'bench-split-secret-bench-split-secret',
    HOST: '127.0.0.1',
    PORT: '0',
    WS_PORT: '0',
    LOG_LEVEL: 'info', // the "chat backend ready" line is how a start is seen; nothing is logged per message
    RATE_LIMIT_MAX: '10000000',
    AUTH_RATE_LIMIT_MAX: '10000000',
    WS_RATE_LIMIT: '100000',
    // Every load-generator client connects from 127.0.0.1: no per-address caps for the bench.
    WS_MAX_CONNECTIONS_PER_ADDRESS: '0',
    WS_MAX_UNAUTHENTICATED_PER_ADDRESS: '0',
  };
  const servers: ServerProcess[] = [];
  try {
    const profiled = (name: string) => (o.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(o.profile, `${rate}-${run}-${name}`)}`]);
    const core = await startServerProcess('core', { ...common, ROLES: 'api,projector,relay,delivery,push', NODE_ID: 'core' }, undefined, profiled('core'));
    servers.push(core);
    const gateway = await startServerProcess('gateway', { ...common, ROLES: 'gateway', NODE_ID: 'gateway' }, undefined, profiled('gateway'));
    servers.push(gateway);
    const target = ['--url', core.restUrl!, '--ws-url', gateway.wsUrl!, '--server-pid', String(gateway.child.pid), '--clients', String(o.clients)];
    await benchWs([...target, '--duration', String(o.warmupDuration), '--rate', String(o.warmup)]);

    let loadPid = 0;
    let trafficStarted: () => void = () => {};
    const traffic = new Promise<void>((started) => (trafficStarted = started));
    const measured = benchWs([...target, '--duration', String(o.duration), '--rate', String(rate)], (pid) => {
      loadPid = pid;
      trafficStarted();
    }, o.verbose);
    // A bench that fails before sending rejects `measured`: race it, so the failure is what is reported.
    await Promise.race([traffic, measured]);
    const parts = () => ({
      core: [core.child.pid!],
      gateway: [gateway.child.pid!],
      postgres: pidsNamed('postgres'),
      nats: pidsNamed('nats-server'),
      redis: pidsNamed('redis-server'),
      load: [loadPid],
    });
    await new Promise((r) => setTimeout(r, o.sampleAfter * 1000));
    const dbNames = namespace.databaseUrls.map((url) => decodeURIComponent(new URL(url).pathname.slice(1)));
    const pgBefore = await pgCounters(namespace.databaseUrls[0]!, dbNames);
    const before = Object.fromEntries(Object.entries(parts()).map(([k, pids]) => [k, cpuMsOf(pids)]));
    const started = Date.now();
    await new Promise((r) => setTimeout(r, o.sampleFor * 1000));
    const seconds = (Date.now() - started) / 1000;
    const cpu = Object.fromEntries(Object.entries(parts()).map(([k, pids]) => [k, Math.round((cpuMsOf(pids) - before[k]!) / seconds)])) as Cpu;
    const pgAfter = await pgCounters(namespace.databaseUrls[0]!, dbNames);
    const result = await measured;
    const { bench: _bench, ...fields } = result;
    const busy = Object.values(cpu).reduce((a, b) => a + b, 0);
    const perMessage = (n: number) => Math.round((n / seconds / Math.max(1, result.msgs_per_s)) * 100) / 100;
    return {
      bench: 'ws-split',
      rate,
      run,
      ...fields,
      cpu_ms_per_s: cpu,
      cpu_us_per_message: Math.round((busy * 1000) / Math.max(1, result.msgs_per_s)),
      pg_commits_per_message: perMessage(pgAfter.commits - pgBefore.commits),
      pg_rows_per_message: perMessage(pgAfter.rows - pgBefore.rows),
      pg_rows_fetched_per_message: perMessage(pgAfter.read - pgBefore.read),
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await namespace.remove();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main() {
  const rates = args.rates.split(',').map((r) => integerOption('rates', r, 1));
  const o = {
    runs: integerOption('runs', args.runs, 1),
    clients: integerOption('clients', args.clients, 2),
    duration: integerOption('duration', args.duration, 1),
    warmup: integerOption('warmup', args.warmup, 1),
    warmupDuration: integerOption('warmup-duration', args['warmup-duration'], 1),
    shards: integerOption('shards', args.shards, 1),
    sampleAfter: integerOption('sample-after', args['sample-after']),
    sampleFor: integerOption('sample-for', args['sample-for'], 1),
    verbose: args.verbose,
    profile: args.profile,
  };
  if (o.sampleAfter + o.sampleFor > o.duration) throw new UsageError('--sample-after + --sample-for must fit in --duration');
  for (const rate of rates) {
    const results = [];
    for (let run = 1; run <= o.runs; run++) {
      const result = await oneRun(rate, run, o);
      results.push(result);
      console.log(JSON.stringify(result));
    }
    console.log(
      JSON.stringify({
        bench: 'ws-split-summary',
        rate,
        runs: results.length,
        all_delivered: results.every((r) => r.delivered === r.expected),
        median_msgs_per_s: median(results.map((r) => r.msgs_per_s)),
        median_p50_ms: median(results.map((r) => r.p50_ms)),
        median_p99_ms: median(results.map((r) => r.p99_ms)),
        median_cpu_us_per_message: median(results.map((r) => r.cpu_us_per_message)),
      }),
    );
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof UsageError ? `bench:split: ${error.message}` : error);
  process.exitCode = error instanceof UsageError ? 2 : 1;
});
