import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { TEST_NATS_URL } from '../gateways/testing/shared-services.js';
import { DEFAULT_SERVER_URL } from '../infra/sql/test-databases.js';
import { ndjson, runCliProcess } from './testing/run-cli.js';

async function leftovers(): Promise<{ streams: string[]; databases: string[] }> {
  const nc = await connect({ servers: TEST_NATS_URL });
  const streams: string[] = [];
  try {
    for await (const info of (await jetstreamManager(nc)).streams.list()) if (info.config.name.startsWith('bench_split_')) streams.push(info.config.name);
  } finally {
    await nc.close();
  }
  const client = new pg.Client({ connectionString: DEFAULT_SERVER_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>("select datname from pg_database where datname like 'bench_split_%'");
    return { streams, databases: rows.map((r) => r.datname) };
  } finally {
    await client.end();
  }
}

describe('npm run bench:split', () => {
  it('runs the split topology on the machine, prints a line per run and per rate with CPU by part, and leaves no stream or database behind', async () => {
    const before = await leftovers();
    const args = ['--rates', '20', '--runs', '1', '--clients', '4', '--duration', '4', '--warmup', '10', '--warmup-duration', '2', '--sample-after', '1', '--sample-for', '2', '--verbose'];
    const { code, stdout, stderr } = await runCliProcess('bench-split', args, {}, 150_000);
    expect(code, stderr).toBe(0);
    const [run, summary] = ndjson(stdout) as [Record<string, unknown>, Record<string, unknown>];
    expect(run).toMatchObject({ bench: 'ws-split', rate: 20, run: 1, clients: 4, group_size: 2 });
    expect(run.delivered).toBe(run.expected);
    expect(run.expected as number).toBeGreaterThan(0);
    const cpu = run.cpu_ms_per_s as Record<string, number>;
    expect(Object.keys(cpu).sort()).toEqual(['core', 'gateway', 'load', 'nats', 'postgres', 'redis']);
    expect(cpu.core! + cpu.gateway!).toBeGreaterThan(0);
    // The database counters moved over the window (PostgreSQL publishes them about once a second).
    expect(run.pg_commits_per_message as number).toBeGreaterThan(0);
    expect(run.pg_rows_per_message as number).toBeGreaterThan(0);
    expect(summary).toMatchObject({ bench: 'ws-split-summary', rate: 20, runs: 1, all_delivered: true, median_p99_ms: run.p99_ms });
    // --verbose: the measured bench:ws's own report, with the latency of each second of the run
    const seconds = [...stderr.matchAll(/^second (\d+): (\d+) delivered, /gm)];
    expect(seconds.map((m) => Number(m[1]))).toEqual([0, 1, 2, 3]);
    expect(seconds.reduce((sum, m) => sum + Number(m[2]), 0)).toBe(run.delivered);
    expect(stderr).toMatch(/^load generator event-loop delay while sending: p50 [\d.]+ ms/m);
    expect(await leftovers()).toEqual(before);
  }, 180_000);

  it('refuses a sample window longer than the run, with exit code 2', async () => {
    const { code, stderr } = await runCliProcess('bench-split', ['--duration', '5', '--sample-after', '3', '--sample-for', '3'], {});
    expect(code).toBe(2);
    expect(stderr).toContain('--sample-after + --sample-for must fit in --duration');
  });
});
