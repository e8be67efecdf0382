import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * One server process as an operator runs it: `node --import tsx gateways/main.ts` with its own
 * environment (never the tsx binary: SIGKILL must hit the server itself, not a launcher).
 * Ready once it logged "chat backend ready"; its REST and WebSocket URLs are read from stdout.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export type ServerProcess = {
  readonly name: string;
  readonly child: ChildProcess;
  /** `REST API:` line (null without the api role). */
  readonly restUrl: string | null;
  /** `WebSocket:` line (null without the gateway role). */
  readonly wsUrl: string | null;
  output(): string;
  /** Resolves when the process has exited: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then waits for the exit (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** A server process just spawned, not waited for: for tests of start-up failures. */
export type SpawnedServer = {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** `nodeArgs`: extra options for node itself, before the script (e.g. `--cpu-prof`). */
export function spawnServerProcess(name: string, env: Record<string, string>, nodeArgs: readonly string[] = []): SpawnedServer {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'gateways/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal })),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => `--- ${name} stdout\n${stdout}\n--- ${name} stderr\n${stderr}`,
    exited,
  };
}

export async function startServerProcess(
  name: string,
  env: Record<string, string>,
  timeoutMs = 30_000,
  nodeArgs: readonly string[] = [],
): Promise<ServerProcess> {
  const { child, stdout, output, exited } = spawnServerProcess(name, env, nodeArgs);
  const deadline = Date.now() + timeoutMs;
  while (!stdout().includes('"msg":"chat backend ready"')) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const restUrl = /^REST API:\s+(http:\/\/\S+)$/m.exec(stdout())?.[1] ?? null;
  const wsUrl = /^WebSocket:\s+(ws:\/\/\S+)$/m.exec(stdout())?.[1] ?? null;
  return {
    name,
    child,
    restUrl,
    wsUrl,
    output,
    exited,
    async stop(stopTimeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      }
      return exited;
    },
  };
}
