import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { integerOption, parseCommandLine, UsageError } from './lib/cli.js';
import { runScenario, type ScenarioResult } from './chaos/run-scenario.js';
import { SCENARIOS } from './chaos/scenarios.js';
import { killEveryChild, startPrivateServices, type PrivateServices } from './chaos/topology.js';

/**
 * The chaos suite: the durable split topology on private servers, SDK clients chatting
 * through it, one fault per scenario, and a check that nothing acknowledged was lost, doubled or
 * reordered, with no forced reconnect. README.md, "Chaos suite"; RELIABILITY.md.
 *
 *   npm run chaos [-- --scenarios kill-api,restart-nats] [--rounds N] [--verbose] [--keep-logs]
 *                    [--users 24] [--rate 1] [--before 5] [--after 6]
 *
 * One JSON line per scenario on stdout; exit code 1 when any scenario failed, 2 on bad arguments.
 * The child processes' logs go to a temp directory, kept (and named) when a scenario failed or with
 * --keep-logs.
 */

const USAGE = 'usage: npm run chaos -- [--scenarios a,b] [--rounds N] [--verbose] [--keep-logs] [--users N] [--rate msgs/s per client] [--before s] [--after s]\n';

const { values: args } = parseCommandLine(process.argv.slice(2), {
  scenarios: { type: 'string' },
  rounds: { type: 'string', default: '1' },
  users: { type: 'string', default: '24' },
  rate: { type: 'string', default: '1' },
  before: { type: 'string', default: '5' },
  after: { type: 'string', default: '6' },
  verbose: { type: 'boolean', default: false },
  'keep-logs': { type: 'boolean', default: false },
});

let services: PrivateServices | null = null;
let logDir: string | null = null;
let keepLogs = args['keep-logs'];

async function cleanUp(): Promise<void> {
  killEveryChild();
  const s = services;
  services = null;
  await s?.close();
  if (logDir !== null && !keepLogs) await rm(logDir, { recursive: true, force: true });
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`chaos: ${signal}: stopping every process and private server\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const wanted = args.scenarios === undefined ? SCENARIOS.map((s) => s.name) : args.scenarios.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = wanted.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) throw new UsageError(`unknown scenario ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
  // In the order given; a name given twice runs twice.
  const scenarios = wanted.map((name) => SCENARIOS.find((s) => s.name === name)!);
  const rounds = integerOption('rounds', args.rounds, 1);
  const users = integerOption('users', args.users, 4);
  const rate = Number(args.rate);
  if (!Number.isFinite(rate) || rate <= 0 || rate > 20) throw new UsageError(`--rate must be a number of messages per second per client above 0 and at most 20, got ${JSON.stringify(args.rate)}`);
  const beforeMs = integerOption('before', args.before, 1) * 1000;
  const afterMs = integerOption('after', args.after, 1) * 1000;
  const log = (line: string) => {
    if (args.verbose) process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${line}\n`);
  };

  logDir = await mkdtemp(join(tmpdir(), 'chat-chaos-'));
  log(`logs in ${logDir}; starting private PostgreSQL, NATS and Redis`);
  services = await startPrivateServices();
  log(`private services: ${services.postgres.serverUrl}, ${services.nats.url}, ${services.redis.url}`);
  const results: ScenarioResult[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of scenarios) {
      if (interrupted) return;
      log(`round ${round}: ${scenario.name}: ${scenario.description}`);
      const result = await runScenario(scenario, { services, logDir, users, ratePerClient: rate, beforeMs, afterMs, log });
      results.push(result);
      if (!result.passed) keepLogs = true;
      process.stdout.write(`${JSON.stringify({ ...(rounds > 1 ? { round } : {}), ...result })}\n`);
    }
  }
  const failed = results.filter((r) => !r.passed);
  const failedNames = failed.length > 0 ? ` (${failed.map((r) => r.scenario).join(', ')})` : '';
  process.stderr.write(`chaos: ${results.length - failed.length} passed, ${failed.length} failed${failedNames}${keepLogs ? `; logs kept in ${logDir}` : ''}\n`);
  if (failed.length > 0) process.exitCode = 1;
}

try {
  await main();
} catch (error) {
  if (error instanceof UsageError) {
    process.stderr.write(`chaos: ${error.message}\n${USAGE}`);
    process.exitCode = 2;
  } else {
    keepLogs = logDir !== null;
    process.stderr.write(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}${logDir !== null ? `\nlogs kept in ${logDir}` : ''}\n`);
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) await cleanUp();
}
