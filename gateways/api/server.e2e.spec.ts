import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTempDatabases } from '../../infra/testing/postgres.js';
import { spawnServerProcess, startServerProcess, type ServerProcess } from '../testing/server-process.js';

/**
 * The server as a user runs it: `node --import tsx gateways/main.ts` on the embedded default, over
 * real HTTP; stopped with SIGTERM and started again on the same data directory.
 */

type Server = { url: string; process: ServerProcess; output: () => string };

async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<Server> {
  const p = await startServerProcess('server', { PORT: '0', WS_PORT: '0', HOST: '127.0.0.1', CHAT_DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env });
  if (p.restUrl === null) throw new Error(`no REST API line:\n${p.output()}`);
  return { url: p.restUrl, process: p, output: () => p.output() };
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
  const children: { kill(signal: NodeJS.Signals): boolean; exitCode: number | null }[] = [];
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('serves the walkthrough over HTTP, stops on SIGTERM and keeps its data across a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'chat-server-'));
    dirs.push(dataDir);

    const first = await startServer(dataDir);
    children.push(first.process.child);
    expect((await http(first, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
    const alice = (await http(first, 'POST', '/api/v1/auth/register', undefined, { username: 'alice', email: 'alice@example.test', password: 'alice long password' })).body;
    const bob = (await http(first, 'POST', '/api/v1/auth/register', undefined, { username: 'bob', email: 'bob@example.test', password: 'bob long password' })).body;
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

    expect((await first.process.stop()).code).toBe(0);
    expect(first.output()).toContain('stopped');
    expect(first.output()).not.toContain(alice.token); // tokens never reach the log
    expect((await stat(join(dataDir, 'jwt-secret'))).mode & 0o777).toBe(0o600);

    const second = await startServer(dataDir);
    children.push(second.process.child);
    const login = await http(second, 'POST', '/api/v1/auth/login', undefined, { username: 'bob', password: 'bob long password' });
    expect(login.status).toBe(200);
    expect(login.body.user_id).toBe(bob.user_id);
    const again = await http(second, 'GET', `/api/v1/conversations/${id}/messages`, login.body.token);
    expect(again.body.messages.map((m: { sequence_number: number }) => m.sequence_number)).toEqual(sent.map((m) => m.sequence_number));
    // The JWT secret was kept too: a token from before the restart still works.
    expect((await http(second, 'GET', '/api/v1/conversations', alice.token)).status).toBe(200);
    expect((await http(second, 'GET', `/api/v1/messages/${last.message_id}/status`, alice.token)).body.status).toBe('read');

    expect((await second.process.stop()).code).toBe(0);
  }, 60_000);

  it('stops gracefully when the stop signal comes several times at once (relayed by npm, tsx or a service manager)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'chat-server-'));
    dirs.push(dataDir);
    const server = await startServer(dataDir);
    children.push(server.process.child);

    server.process.child.kill('SIGTERM');
    server.process.child.kill('SIGTERM');
    server.process.child.kill('SIGINT');

    expect((await server.process.exited).code, server.output()).toBe(0);
    expect(server.output()).toContain('stopped');
    expect(server.output()).not.toContain('exiting now');
  }, 60_000);

  it('runs on PostgreSQL shards when DATABASE_URL lists them', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'chat-server-'));
    dirs.push(dataDir);
    const temp = await createTempDatabases('server_test', 2);
    try {
      const server = await startServer(dataDir, { DATABASE_URL: temp.urls.join(',') });
      children.push(server.process.child);
      const alice = (await http(server, 'POST', '/api/v1/auth/register', undefined, { username: 'alice', email: 'alice@example.test', password: 'alice long password' })).body;
      const bob = (await http(server, 'POST', '/api/v1/auth/register', undefined, { username: 'bob', email: 'bob@example.test', password: 'bob long password' })).body;
      const id = (await http(server, 'POST', '/api/v1/conversations', alice.token, { participant_id: bob.user_id })).body.conversation_id;
      expect((await http(server, 'POST', `/api/v1/conversations/${id}/messages`, alice.token, { content: 'on postgres' })).status).toBe(201);
      expect((await http(server, 'GET', `/api/v1/conversations/${id}/messages`, bob.token)).body.messages[0].content).toBe('on postgres');
      expect(server.output()).toContain('"mode":"postgres","shards":2');
      expect((await server.process.stop()).code).toBe(0);
    } finally {
      await temp.drop();
    }
  }, 60_000);

  it('refuses a bad PORT with exit code 1 and a message naming it, without a stack trace', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'chat-server-'));
    dirs.push(dataDir);
    const p = spawnServerProcess('server', { PORT: 'abc', CHAT_DATA_DIR: dataDir });
    children.push(p.child);
    expect((await p.exited).code).toBe(1);
    expect(p.stderr()).toContain('PORT: expected an integer from 0 to 65535, got "abc"');
    expect(p.stderr()).not.toMatch(/\n\s+at /);
  }, 30_000);
});
