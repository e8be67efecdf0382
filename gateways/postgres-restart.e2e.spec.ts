import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../infra/config/config.js';
import { createDependencyHealth } from '../infra/health/dependencies.js';
import type { SqlDatabase } from '../domain/ports/sql.js';
import { createPostgresDatabase } from '../infra/sql/postgres.js';
import { createPrivatePostgres, type PrivatePostgres } from '../infra/testing/private-postgres.js';
import { createClient, TEST_JWT_SECRET, type Registered } from './api/testing/api-stack.js';
import { composeStack, type Stack } from './compose/process.js';
import { sdkClients, until } from './testing/sdk-clients.js';

/**
 * The whole server in one process (api, gateway, projector, relay, delivery, push) on a
 * PostgreSQL server of its own with two shards, which is stopped (fast shutdown: every connection
 * cut) and started again while clients chat. No supervisor: the process must carry on by itself.
 * While the database is down, readiness says so and requests get 503 (REST) or a retryable Error
 * (WebSocket); once it is back, every message sent meanwhile is stored once and reaches the other
 * member once, in order, with no reconnect. Each shard's outage is logged once, down and back.
 */
describe('the server while its PostgreSQL restarts', () => {
  let server: PrivatePostgres;
  let stack: Stack;
  let baseUrl: string;
  let databases: SqlDatabase[] = [];
  const logs: Record<string, unknown>[] = [];
  const sdk = sdkClients(() => baseUrl);

  beforeAll(async () => {
    server = await createPrivatePostgres();
    const prefix = `restart_${randomBytes(3).toString('hex')}`;
    const urls = [await server.createDatabase(`${prefix}_0`), await server.createDatabase(`${prefix}_1`)];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    const health = createDependencyHealth({ logger: logger.child({ component: 'health' }) });
    databases = urls.map((connectionString, shard) => createPostgresDatabase({ connectionString, max: 10, dependencyName: `postgresql shard ${shard}`, health }));
    const config = parseConfig({
      JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMIT_MAX: '1000000',
      AUTH_RATE_LIMIT_MAX: '1000000',
      LOG_LEVEL: 'info',
      CHAT_DATA_DIR: '/nonexistent-tests-use-no-data-dir',
      DATABASE_URL: urls.join(','),
    });
    stack = await composeStack({ config, logger, databases, users: { argon2: { memoryKiB: 1024, timeCost: 1, parallelism: 1 } }, health });
    await stack.listenRealtime('127.0.0.1', 0);
    await stack.app.listen({ host: '127.0.0.1', port: 0 });
    const address = stack.app.server.address();
    if (address === null || typeof address !== 'object') throw new Error('no address');
    baseUrl = `http://127.0.0.1:${address.port}`;
  }, 120_000);

  afterAll(async () => {
    await sdk.closeAll();
    await stack?.close();
    await server?.drop();
  }, 60_000);

  async function http(method: string, path: string, token?: string, body?: unknown) {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : null };
  }

  const connect = (user: Registered) => sdk.connect(user);

  const logged = (msg: string, dependency: string) => logs.filter((l) => l.msg === msg && l.dependency === dependency).length;

  it('reports the outage, refuses with retryable errors meanwhile, and carries on when it is back: nothing lost, nothing doubled', async () => {
    const api = createClient(stack.app);
    const alice = await api.register('pgr_alice');
    const bob = await api.register('pgr_bob');
    const conversation = await http('POST', '/api/v1/conversations', alice.token, { participant_id: bob.user_id });
    expect(conversation.status).toBe(201);
    const conversationId = conversation.body!.conversation_id as string;
    const a = connect(alice);
    const b = connect(bob);
    await Promise.all([a.c.connect(), b.c.connect()]);
    a.c.track(conversationId);
    b.c.track(conversationId);
    await a.c.send(conversationId, 'before');
    await until(() => b.contents().length === 1, 'the first message');
    const ready = await http('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready' });
    expect((ready.body!.dependencies as { name: string; status: string }[]).map((d) => `${d.name}:${d.status}`)).toEqual(['postgresql shard 0:up', 'postgresql shard 1:up']);

    await server.stop();

    const unready = await http('GET', '/readyz');
    expect(unready.status).toBe(503);
    expect(unready.body).toMatchObject({ status: 'unavailable', error: { code: 'service_unavailable' } });
    expect((unready.body!.dependencies as { name: string; status: string }[]).map((d) => `${d.name}:${d.status}`)).toEqual(['postgresql shard 0:down', 'postgresql shard 1:down']);
    const refused = await http('POST', `/api/v1/conversations/${conversationId}/messages`, alice.token, { content: 'over REST, refused', content_type: 'text' });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'service_unavailable' } });
    expect(refused.headers.get('retry-after')).toBe('1');
    // Sends over the WebSocket meanwhile: answered "retry later", which the SDK does.
    const during = ['during 1', 'during 2', 'during 3'].map((content) => a.c.send(conversationId, content));
    await new Promise((r) => setTimeout(r, 1_500));

    await server.start();

    await until(async () => (await http('GET', '/readyz')).status === 200, 'readiness after the restart');
    await Promise.all(during);
    await a.c.send(conversationId, 'after');
    const expected = ['before', 'during 1', 'during 2', 'during 3', 'after'];
    await until(() => b.contents().length >= expected.length, 'every message at bob');
    expect(b.contents()).toEqual(expected);
    expect(a.c.stats().reconnects).toBe(0);
    expect(b.c.stats().reconnects).toBe(0);
    // History is the projection: the WebSocket sends did not wait for it, so it may trail a moment.
    const history = async () => {
      const page = await http('GET', `/api/v1/conversations/${conversationId}/messages?limit=50`, bob.token);
      expect(page.status).toBe(200);
      return (page.body!.messages as { content: string }[]).map((m) => m.content);
    };
    await until(async () => (await history()).length >= expected.length, 'the projection to show every message');
    expect(await history()).toEqual(expected);
    // One line when each shard went down, one when it was back.
    for (const shard of ['postgresql shard 0', 'postgresql shard 1']) {
      await until(() => logged('dependency back', shard) > 0, `the log line saying ${shard} is back`);
      expect(logged('dependency down', shard)).toBe(1);
      expect(logged('dependency back', shard)).toBe(1);
    }
    // An outage is no error of the server's: nothing logged it at error level (the LISTEN
    // connection's reconnection attempts used to, once per attempt and process).
    expect(logs.filter((l) => typeof l.level === 'number' && l.level >= 50).map((l) => l.msg)).toEqual([]);
  });
});
