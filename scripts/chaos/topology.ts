import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPrivatePostgres, freePort, type PrivatePostgres } from '../../infra/testing/private-postgres.js';
import { startPrivateNats, startPrivateRedis, type PrivateServer } from '../../infra/testing/private-servers.js';

/**
 * The durable split topology of the chaos suite, on private servers of this machine's binaries
 * (never the shared PostgreSQL on 5432, NATS on 4222 or Redis on 6379, which other sessions use):
 *
 * - `startPrivateServices`: a PostgreSQL cluster of its own (pg_createcluster), a nats-server with
 *   JetStream and a redis-server, on spare loopback ports, for the whole run; each may be stopped
 *   and started again (restart-postgres, restart-nats, restart-redis).
 * - `startTopology`: one scenario's processes, fresh: two databases on the private cluster (two
 *   event-store shards), a NATS prefix and a Redis key prefix of their own, and one OS process per
 *   role as an operator runs them (`node --import tsx gateways/main.ts`, ROLES and NODE_ID each,
 *   the same JWT_SECRET): api, projector, relay, delivery, push, gateway-a, gateway-b. The api and
 *   the gateways listen on fixed ports, so a process started again after a crash is found where it
 *   was. No supervisor: a process that exits by itself is recorded as a failure.
 *
 * Each process's stdout and stderr go to `<logDir>/<scenario>/<role>.log` (a restart appends to it).
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export const ROLE_PROCESSES = ['api', 'projector', 'relay', 'delivery', 'push', 'gateway-a', 'gateway-b'] as const;
export type RoleProcessName = (typeof ROLE_PROCESSES)[number];
export const GATEWAYS = ['gateway-a', 'gateway-b'] as const satisfies readonly RoleProcessName[];

export type PrivateServices = {
  readonly postgres: PrivatePostgres;
  readonly nats: PrivateServer;
  readonly redis: PrivateServer;
  close(): Promise<void>;
};

export async function startPrivateServices(): Promise<PrivateServices> {
  const started: { postgres?: PrivatePostgres; nats?: PrivateServer; redis?: PrivateServer } = {};
  const close = async () => {
    await Promise.allSettled([started.postgres?.drop(), started.nats?.close(), started.redis?.close()]);
  };
  try {
    [started.postgres, started.nats, started.redis] = await Promise.all([createPrivatePostgres(), startPrivateNats(), startPrivateRedis()]);
    return { postgres: started.postgres, nats: started.nats, redis: started.redis, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export type ProcessExit = { role: RoleProcessName; code: number | null; signal: NodeJS.Signals | null; atMs: number };

type Running = {
  child: ChildProcess;
  /** Set when the suite itself ends it (SIGKILL of a scenario, or the final stop). */
  expectedExit: boolean;
  stopped: boolean;
  exited: Promise<void>;
};

export type Topology = {
  readonly restUrl: string;
  readonly wsUrls: Readonly<Record<(typeof GATEWAYS)[number], string>>;
  readonly databaseUrls: readonly string[];
  readonly logDir: string;
  pid(role: RoleProcessName): number | null;
  /** SIGKILL, waits for the exit. */
  kill(role: RoleProcessName): Promise<void>;
  /** Starts the role again with the same environment (as an operator would after a crash); resolves once it is ready. */
  start(role: RoleProcessName): Promise<void>;
  /** SIGSTOP / SIGCONT. */
  pause(role: RoleProcessName): void;
  resume(role: RoleProcessName): void;
  /** Processes that exited without the suite ending them. */
  unexpectedExits(): readonly ProcessExit[];
  /** Every role process running (none exited by itself, none left dead). */
  allAlive(): boolean;
  /** SIGTERM to every process (SIGKILL after a bound). */
  close(): Promise<void>;
};

/** Every child process started, for the cleanup on Ctrl-C or a failure. */
const everyChild = new Set<ChildProcess>();

/** Ends every child process still running at once (SIGCONT first: a stopped process does not die of SIGTERM). */
export function killEveryChild(): void {
  for (const child of everyChild) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}

const READY = '"msg":"chat backend ready"';

export async function startTopology(o: {
  services: PrivateServices;
  scenario: string;
  logDir: string;
  /** Extra environment for every process. */
  env?: Record<string, string>;
  startTimeoutMs?: number;
}): Promise<Topology> {
  const id = `chaos_${o.scenario.replace(/[^a-z0-9]/g, '_')}_${randomBytes(3).toString('hex')}`;
  const databaseUrls = [await o.services.postgres.createDatabase(`${id}_0`), await o.services.postgres.createDatabase(`${id}_1`)];
  const logDir = join(o.logDir, `${o.scenario}-${id.slice(-6)}`);
  await mkdir(join(logDir, 'data'), { recursive: true });
  const [apiPort, portA, portB] = [await freePort(), await freePort(), await freePort()];
  const wsUrls = { 'gateway-a': `ws://127.0.0.1:${portA}/ws`, 'gateway-b': `ws://127.0.0.1:${portB}/ws` };
  const common: Record<string, string> = {
    DATABASE_URL: databaseUrls.join(','),
    NATS_URL: o.services.nats.url,
    NATS_PREFIX: id.slice(0, 32),
    REDIS_URL: o.services.redis.url,
    REDIS_PREFIX: `${id}:`,
    JWT_SECRET: `chaos-${randomBytes(24).toString('hex')}`,
    HOST: '127.0.0.1',
    CHAT_DATA_DIR: join(logDir, 'data'),
    LOG_LEVEL: 'info',
    PUBLIC_WS_URL: wsUrls['gateway-a'],
    // The one limit raised: the driver registers and logs in every user from one address (two
    // password hashes a user), past the 30 a minute a real client address is allowed.
    AUTH_RATE_LIMIT_MAX: '10000',
    ...o.env,
  };
  const envOf: Record<RoleProcessName, Record<string, string>> = {
    api: { ...common, ROLES: 'api', NODE_ID: 'api', PORT: String(apiPort) },
    projector: { ...common, ROLES: 'projector', NODE_ID: 'projector' },
    relay: { ...common, ROLES: 'relay', NODE_ID: 'relay' },
    delivery: { ...common, ROLES: 'delivery', NODE_ID: 'delivery' },
    push: { ...common, ROLES: 'push', NODE_ID: 'push' },
    'gateway-a': { ...common, ROLES: 'gateway', NODE_ID: 'gw-a', WS_PORT: String(portA) },
    'gateway-b': { ...common, ROLES: 'gateway', NODE_ID: 'gw-b', WS_PORT: String(portB) },
  };
  const running = new Map<RoleProcessName, Running>();
  const exits: ProcessExit[] = [];
  const logs = new Map<RoleProcessName, WriteStream>();
  const startTimeoutMs = o.startTimeoutMs ?? 90_000;

  async function start(role: RoleProcessName): Promise<void> {
    const previous = running.get(role);
    if (previous !== undefined && previous.child.exitCode === null && previous.child.signalCode === null) throw new Error(`${role} is running`);
    let log = logs.get(role);
    if (log === undefined) {
      log = createWriteStream(join(logDir, `${role}.log`), { flags: 'a' });
      logs.set(role, log);
    }
    log.write(`--- chaos: starting ${role} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', 'gateways/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...envOf[role] },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    everyChild.add(child);
    let ready = false;
    let tail = '';
    const sink = log;
    child.stdout!.on('data', (chunk: Buffer) => {
      sink.write(chunk);
      if (!ready) {
        tail = (tail + chunk.toString()).slice(-64_000);
        if (tail.includes(READY)) ready = true;
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => sink.write(chunk));
    const entry: Running = { child, expectedExit: false, stopped: false, exited: Promise.resolve() };
    entry.exited = new Promise<void>((done) =>
      child.on('exit', (code, signal) => {
        everyChild.delete(child);
        sink.write(`--- chaos: ${role} exited (code ${code}, signal ${signal}) at ${new Date().toISOString()}${entry.expectedExit ? ' (ended by the suite)' : ''}\n`);
        if (!entry.expectedExit) exits.push({ role, code, signal, atMs: Date.now() });
        done();
      }),
    );
    running.set(role, entry);
    const deadline = Date.now() + startTimeoutMs;
    while (!ready) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${role} exited during start-up (log: ${join(logDir, `${role}.log`)})`);
      if (Date.now() > deadline) {
        entry.expectedExit = true;
        child.kill('SIGKILL');
        throw new Error(`${role} was not ready within ${startTimeoutMs} ms (log: ${join(logDir, `${role}.log`)})`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  const entryOf = (role: RoleProcessName) => {
    const entry = running.get(role);
    if (entry === undefined) throw new Error(`${role} was never started`);
    return entry;
  };
  const alive = (entry: Running) => entry.child.exitCode === null && entry.child.signalCode === null;

  async function close(): Promise<void> {
    await Promise.all(
      [...running.values()].map(async (entry) => {
        if (!alive(entry)) return;
        entry.expectedExit = true;
        entry.child.kill('SIGCONT');
        entry.child.kill('SIGTERM');
        const timer = setTimeout(() => entry.child.kill('SIGKILL'), 15_000);
        await entry.exited;
        clearTimeout(timer);
      }),
    );
    await Promise.all([...logs.values()].map((log) => new Promise<void>((done) => log.end(() => done()))));
  }

  try {
    // The database schema first (the api sets up most of it), then the rest together.
    await start('api');
    await Promise.all(ROLE_PROCESSES.filter((r) => r !== 'api').map((r) => start(r)));
  } catch (error) {
    await close();
    throw error;
  }

  return {
    restUrl: `http://127.0.0.1:${apiPort}`,
    wsUrls,
    databaseUrls,
    logDir,
    pid: (role) => running.get(role)?.child.pid ?? null,
    async kill(role) {
      const entry = entryOf(role);
      if (!alive(entry)) return;
      entry.expectedExit = true;
      entry.child.kill('SIGKILL');
      await entry.exited;
    },
    start,
    pause(role) {
      const entry = entryOf(role);
      entry.stopped = true;
      entry.child.kill('SIGSTOP');
    },
    resume(role) {
      const entry = entryOf(role);
      entry.stopped = false;
      entry.child.kill('SIGCONT');
    },
    unexpectedExits: () => exits,
    allAlive: () => ROLE_PROCESSES.every((role) => {
      const entry = running.get(role);
      return entry !== undefined && alive(entry);
    }),
    close,
  };
}
