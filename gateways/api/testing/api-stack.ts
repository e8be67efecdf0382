import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino, type Logger } from 'pino';
import { parseConfig, type Config } from '../../../infra/config/config.js';
import { createPgliteDatabase } from '../../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../../domain/ports/sql.js';
import { createPostgresDatabase } from '../../../infra/sql/postgres.js';
import { createTempDatabases } from '../../../infra/testing/postgres.js';
import { composeStack, type ComposeOptions, type Stack } from '../../compose/process.js';

export type Adapter = 'pglite' | 'postgres';

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

/**
 * The whole server stack (store, users, projector, REST API) for e2e tests, driven with inject():
 * PGlite in memory (one shard), or PostgreSQL with two throw-away databases as two shards.
 */
export async function createApiStack(adapter: Adapter, options: { env?: Record<string, string>; logger?: Logger; push?: ComposeOptions['push'] } = {}) {
  const config: Config = parseConfig({
    JWT_SECRET: TEST_JWT_SECRET,
    RATE_LIMIT_MAX: '1000000',
    AUTH_RATE_LIMIT_MAX: '1000000',
    // Every test client connects from 127.0.0.1 (a group of 256 members is 256 sockets): the
    // per-address caps are tested on their own (gateways/gateway/limits.e2e.spec.ts).
    WS_MAX_CONNECTIONS_PER_ADDRESS: '0',
    WS_MAX_UNAUTHENTICATED_PER_ADDRESS: '0',
    LOG_LEVEL: 'silent',
    CHAT_DATA_DIR: '/nonexistent-tests-use-no-data-dir',
    ...options.env,
  });
  let databases: SqlDatabase[];
  let drop = async () => {};
  if (adapter === 'pglite') {
    databases = [await createPgliteDatabase()];
  } else {
    const temp = await createTempDatabases('api_test', 2);
    drop = temp.drop;
    databases = temp.urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 10 }));
  }
  let stack: Stack;
  try {
    // A cheap Argon2id keeps registrations fast; the hash format and checks are the production ones.
    stack = await composeStack({ config, logger: options.logger ?? pino({ level: 'silent' }), databases, users: { argon2: { memoryKiB: 1024, timeCost: 1, parallelism: 1 } }, push: options.push });
  } catch (error) {
    await drop();
    throw error;
  }
  return {
    ...stack,
    config,
    client: createClient(stack.app),
    /** Listens on free ports (REST and WebSocket); returns the REST base URL, as `npm start` prints it. */
    async listenAll(): Promise<string> {
      await stack.listenRealtime('127.0.0.1', 0);
      await stack.app.listen({ host: '127.0.0.1', port: 0 });
      const address = stack.app.server.address();
      if (address === null || typeof address !== 'object') throw new Error('no address');
      return `http://127.0.0.1:${address.port}`;
    },
    async close() {
      await stack.close();
      await drop();
    },
  };
}

export type ApiStack = Awaited<ReturnType<typeof createApiStack>>;

// biome-ignore lint/suspicious/noExplicitAny: the parsed JSON of whichever route a test calls; the test's expectations check its shape
export type ApiResponse = { status: number; body: any; headers: LightMyRequestResponse['headers'] };

export type Registered = { user_id: string; username: string; token: string; refresh_token?: string };

let counter = 0;
/** A username no other test of this run uses. */
export const uniqueName = (prefix: string) => `${prefix}_${process.pid}_${++counter}`;

/** Given / when helpers over inject(): `as(user).post(path, body)`. */
export function createClient(app: FastifyInstance) {
  async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] ??= 'application/json';
    const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const response = await app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
    const text = response.body;
    return { status: response.statusCode, body: text.length > 0 ? JSON.parse(text) : null, headers: response.headers };
  }

  const as = (user: { token: string } | null) => {
    const token = user?.token;
    return {
      get: (url: string, headers?: Record<string, string>) => call('GET', url, { token, headers }),
      post: (url: string, body: unknown, headers?: Record<string, string>) => call('POST', url, { token, body, headers }),
      put: (url: string, body: unknown, headers?: Record<string, string>) => call('PUT', url, { token, body, headers }),
      delete: (url: string, headers?: Record<string, string>) => call('DELETE', url, { token, headers }),
    };
  };

  return {
    call,
    as,
    anonymous: as(null),
    async register(prefix: string, password = 'correct horse battery'): Promise<Registered> {
      const username = uniqueName(prefix);
      const res = await call('POST', '/api/v1/auth/register', { body: { username, email: `${username}@example.test`, password } });
      if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    /** A new session of a registered user (another device): its own access and refresh tokens. */
    async login(user: { username: string }, password = 'correct horse battery'): Promise<Registered> {
      const res = await call('POST', '/api/v1/auth/login', { body: { username: user.username, password } });
      if (res.status !== 200) throw new Error(`login ${user.username}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
  };
}
