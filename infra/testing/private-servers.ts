import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './private-postgres.js';

/**
 * A nats-server or redis-server of its own on a spare loopback port, for tests that restart the
 * server (the machine's shared ones must never be restarted): `stop()` ends the process (SIGTERM,
 * as a service manager's restart does), `start()` runs it again on the same port and data
 * directory, `close()` stops it and removes the directory. One per test file.
 */
export type PrivateServer = {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
};

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function privateServer(name: string, url: (port: number) => string, args: (port: number, dir: string) => string[]): Promise<PrivateServer> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  let child: ChildProcess | null = null;
  let output = '';
  const start = async () => {
    if (child !== null) throw new Error(`${name} is running`);
    const started = spawn(name, args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
    started.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
    child = started;
    const deadline = Date.now() + 20_000;
    while (!(await portOpen(port))) {
      if (started.exitCode !== null || Date.now() > deadline) {
        started.kill('SIGKILL');
        child = null;
        throw new Error(`${name} did not start on port ${port}:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stop = async () => {
    const running = child;
    if (running === null) return;
    child = null;
    if (running.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    url: url(port),
    port,
    start,
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** nats-server with JetStream, its store in a directory of its own (kept across a restart). */
export function startPrivateNats(): Promise<PrivateServer> {
  return privateServer('nats-server', (port) => `nats://127.0.0.1:${port}`, (port, dir) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir]);
}

/** redis-server keeping nothing on disk (as on these machines: a restart loses every key). */
export function startPrivateRedis(): Promise<PrivateServer> {
  return privateServer('redis-server', (port) => `redis://127.0.0.1:${port}`, (port, dir) => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
}
