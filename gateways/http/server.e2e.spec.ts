import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createTempDatabases } from '../../infra/testing/postgres.js';

/**
 * The server as a user runs it: `node --import tsx gateways/main.ts` on the embedded default, over
 * real HTTP; stopped with SIGTERM and started again on the same data directory.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

type Server = { child: ChildProcess; url: string; output: () => string; exited: Promise<number | null> };

function run(env: Record<string, string>): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateways/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<Server> {
  const p = run({ PORT: '0', HOST: '127.0.0.1', CHAT_DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const match = /listening on (http:\/\/[^\s"]+)/.exec(p.stdout());
    if (match) return { child: p.child, url: match[1]!, output: () => p.stdout() + p.stderr(), exited: p.exited };
    if (p.child.exitCode !== null || Date.now() > deadline) {
      p.child.kill('SIGKILL');
      throw new Error(`server did not start:\n${p.stdout()}\n${p.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function http(server: Server, method: string, path: string, token?: string, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  if (res.status >= 500) throw new Error(`${method} ${path}: ${res.status} ${text}\n${server.output()}`);
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

describe('the server process (embedded default)', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('serves the walkthrough over HTTP, stops on SIGTERM and keeps its data across a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'chat-server-'));
    dirs.push(dataDir);

    const first = await startServer(dataDir);
    children.push(first.child);
    expect((await http(first, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
    const alice = (await http(first, 'POST', '/api/v1/auth/register', undefined, { username: 'alice', email: 'alice@example.test', password: 'alice password' })).body;
    const bob = (await http(first, 'POST', '/api/v1/auth/register', undefined, { username: 'bob', email: 'bob@example.test', password: 'bob password' })).body;
    const conversation = await http(first, 'POST', '/api/v1/conversations', alice.token, { participant_id: bob.user_id });
    expect(conversation.status, first.output()).toBe(201);
    const id: string = conversation.body.conversation_id;
    const sent = [];
    for (const content of ['one', 'two', 'three']) sent.push((await http(first, 'POST', `/api/v1/conversations/${id}/messages`, alice.token, { content, content_type: 'text' })).body);
    const history = await http(first, 'GET', `/api/v1/conversations/${id}/messages`, bob.token);
    expect(history.body.messages.map((m: { content: string }) => m.content)).toEqual(['one', 'two', 'three']);
    const last = sent[2];
    expect((await http(first, 'PUT', `/api/v1/messages/${last.message_id}/status`, bob.token, { status: 'read' })).status).toBe(200);
    expect((await http(first, 'GET', `/api/v1/messages/${last.message_id}/status`, alice.token)).body.status).toBe('read');

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('stopped');
    expect(first.output()).not.toContain(alice.token); // tokens never reach the log
    expect((await stat(join(dataDir, 'jwt-secret'))).mode & 0o777).toBe(0o600);

    const second = await startServer(dataDir);
    children.push(second.child);
    const login = await http(second, 'POST', '/api/v1/auth/login', undefined, { username: 'bob', password: 'bob password' });
    expect(login.status).toBe(200);
    expect(login.body.user_id).toBe(bob.user_id);
    const again = await http(second, 'GET', `/api/v1/conversations/${id}/messages`, login.body.token);
    expect(again.body.messages.map((m: { sequence_number: number }) => m.sequence_number)).toEqual(sent.map((m) => m.sequence_number));
    // The JWT secret was kept too: a token from before the restart still works.
    expect((await http(second, 'GET', '/api/v1/conversations', alice.token)).status).toBe(200);
    expect((await http(second, 'GET', `/api/v1/messages/${last.message_id}/status`, alice.token)).body.status).toBe('read');

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 60_000);

  it('runs on PostgreSQL shards when DATABASE_URL lists them', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'chat-server-'));
    dirs.push(dataDir);
    const temp = await createTempDatabases('server_test', 2);
    try {
      const server = await startServer(dataDir, { DATABASE_URL: temp.urls.join(',') });
      children.push(server.child);
      const alice = (await http(server, 'POST', '/api/v1/auth/register', undefined, { username: 'alice', email: 'alice@example.test', password: 'alice password' })).body;
      const bob = (await http(server, 'POST', '/api/v1/auth/register', undefined, { username: 'bob', email: 'bob@example.test', password: 'bob password' })).body;
      const id = (await http(server, 'POST', '/api/v1/conversations', alice.token, { participant_id: bob.user_id })).body.conversation_id;
      expect((await http(server, 'POST', `/api/v1/conversations/${id}/messages`, alice.token, { content: 'on postgres' })).status).toBe(201);
      expect((await http(server, 'GET', `/api/v1/conversations/${id}/messages`, bob.token)).body.messages[0].content).toBe('on postgres');
      expect(server.output()).toContain('"mode":"postgres","shards":2');
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      await temp.drop();
    }
  }, 60_000);

  it('refuses a bad PORT with exit code 1 and a message naming it, without a stack trace', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'chat-server-'));
    dirs.push(dataDir);
    const p = run({ PORT: 'abc', CHAT_DATA_DIR: dataDir });
    children.push(p.child);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('PORT: expected an integer from 0 to 65535, got "abc"');
    expect(p.stderr()).not.toMatch(/\n\s+at /);
  }, 30_000);
});
