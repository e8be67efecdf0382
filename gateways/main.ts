import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { createConversationCommands } from '../commands/conversations.js';
import { ConfigError, loadConfig, type Config } from '../infra/config/config.js';
import { resolveJwtSecret } from '../infra/config/jwt-secret.js';
import { createMemoryBus } from '../infra/bus/memory.js';
import type { EventBus } from '../infra/bus/port.js';
import { createRelay, type Relay } from '../infra/bus/relay.js';
import { createMemoryPresenceStore } from '../infra/presence/memory.js';
import type { PresenceStore } from '../infra/presence/port.js';
import { createSqlEventStore, type SqlEventStore } from '../infra/event-store/sql-event-store.js';
import { createPgliteDatabase } from '../infra/sql/pglite.js';
import type { SqlDatabase } from '../infra/sql/port.js';
import { createPostgresDatabase } from '../infra/sql/postgres.js';
import { createSqlUserRepository, type SqlUserRepositoryOptions } from '../infra/users/sql.js';
import type { UserRepository } from '../infra/users/port.js';
import { conversationsProjection } from '../projections/conversations/projection.js';
import { createConversationQueries } from '../projections/conversations/queries.js';
import { createProjector, type Projector } from '../projections/runtime.js';
import { buildApp } from './http/app.js';
import { createTokenService, type TokenService } from './http/auth.js';
import { createDeliveryWorker, type DeliveryWorker } from './delivery/worker.js';
import { createWsGateway, type WsGateway } from './ws/gateway.js';

/**
 * The composition root: the one place that chooses adapters from the configuration.
 *
 * - no DATABASE_URL: one embedded PGlite database on disk under CHAT_DATA_DIR holds the event
 *   store (one shard), the read models and the users table — no service to install;
 * - DATABASE_URL=url1,url2,...: PostgreSQL, one database per event-store shard; read models and
 *   users live in the first.
 *
 * One process runs the REST API, the projector and the real-time path (embedded default): the
 * relay (store → in-process bus), the delivery worker (bus group `delivery`), the in-memory
 * presence store and the WebSocket gateway (uWebSockets.js, WS_PORT), routed to by NODE_ID.
 */

export type Stack = {
  app: FastifyInstance;
  store: SqlEventStore;
  projector: Projector;
  databases: SqlDatabase[];
  users: UserRepository;
  tokens: TokenService;
  bus: EventBus;
  presence: PresenceStore;
  relay: Relay;
  delivery: DeliveryWorker;
  /** Not listening yet: `listenRealtime` (or a test) makes it listen. */
  gateway: WsGateway;
  /** Starts the WebSocket gateway on host:port; resolves to the bound port. */
  listenRealtime(host: string, port: number): Promise<number>;
  /** Stops serving, then the projector, then closes the store and the databases. */
  close(): Promise<void>;
};

export function createRootLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'chat-backend' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization', '*.password', 'password', 'token'], censor: '[redacted]' },
  });
}

/** The databases the configuration names: the embedded one on disk, or one PostgreSQL pool per shard. */
export async function openDatabases(config: Pick<Config, 'dataDir' | 'databaseUrls'>): Promise<SqlDatabase[]> {
  if (config.databaseUrls.length === 0) {
    const dataDir = join(config.dataDir, 'db');
    await mkdir(dataDir, { recursive: true });
    return [await createPgliteDatabase({ dataDir })];
  }
  return config.databaseUrls.map((connectionString, shard) =>
    createPostgresDatabase({ connectionString, max: 10, applicationName: `chat-backend-shard-${shard}` }),
  );
}

export type ComposeOptions = {
  config: Config;
  logger: Logger;
  /** The shard databases (index 0 also holds read models and users). The stack closes them. */
  databases: SqlDatabase[];
  users?: SqlUserRepositoryOptions;
};

/** Builds store, users, commands, projector (started) and the REST API over `databases`. */
export async function composeStack(options: ComposeOptions): Promise<Stack> {
  const { config, logger, databases } = options;
  const primary = databases[0];
  if (!primary) throw new RangeError('composeStack needs at least one database');
  const closers: (() => Promise<unknown>)[] = [() => Promise.allSettled(databases.map((db) => db.close()))];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        logger.error({ err: error }, 'error while closing');
      }
    }
  };
  try {
    const store = await createSqlEventStore({
      shards: databases,
      ownsDatabases: false,
      onListenerError: (error) => logger.error({ err: error }, 'event store listener failed'),
    });
    closers.push(() => store.close());

    const users = createSqlUserRepository(primary, options.users);
    await users.ensureSchema();

    const projector = createProjector({
      store,
      db: primary,
      projections: [conversationsProjection],
      logger: logger.child({ component: 'projector' }),
    });
    await projector.start();
    closers.push(() => projector.stop());

    const jwt = await resolveJwtSecret(config);
    if (jwt.source === 'generated') logger.info({ path: jwt.path }, 'generated a JWT secret (set JWT_SECRET to choose one)');

    const bus = createMemoryBus({ logger: logger.child({ component: 'bus' }) });
    closers.push(() => bus.close());
    const presence = createMemoryPresenceStore();
    closers.push(() => presence.close());
    const relay = createRelay({ store, bus, db: primary, pollIntervalMs: 50, logger: logger.child({ component: 'relay' }) });
    await relay.start();
    closers.push(() => relay.stop());
    const delivery = createDeliveryWorker({ bus, store, presence, logger: logger.child({ component: 'delivery' }) });
    delivery.start();
    closers.push(() => delivery.stop());

    const tokens = createTokenService({ secret: jwt.secret, ttlSeconds: config.jwtTtlSeconds });
    const commands = createConversationCommands({ store, users, clock: () => new Date() });
    const queries = createConversationQueries(primary);
    const gateway = createWsGateway({
      nodeId: config.nodeId,
      tokens,
      commands,
      store,
      queries,
      presence,
      bus,
      logger: logger.child({ component: 'ws', node: config.nodeId }),
    });
    closers.push(() => gateway.close());
    let websocketPort: number | null = null;

    const app = await buildApp({
      settings: {
        maxMessageBytes: config.maxMessageBytes,
        rateLimitMax: config.rateLimitMax,
        rateLimitWindowMs: config.rateLimitWindowMs,
        readYourWritesTimeoutMs: config.readYourWritesTimeoutMs,
      },
      logger: logger.child({ component: 'http' }),
      tokens,
      users,
      commands,
      queries,
      projector,
    }, { presence, websocketPort: () => websocketPort });
    closers.push(() => app.close());

    return {
      app,
      store,
      projector,
      databases,
      users,
      tokens,
      bus,
      presence,
      relay,
      delivery,
      gateway,
      async listenRealtime(host: string, port: number) {
        websocketPort = await gateway.listen(host, port);
        return websocketPort;
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * One server per embedded data directory: two processes writing one PGlite directory would
 * corrupt it. The lock file holds the owner's pid; a lock left by a dead process is taken over.
 */
async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, 'server.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new Error(`${dataDir} is in use by process ${owner} (another server on the same CHAT_DATA_DIR)`);
      }
      await rm(path, { force: true });
    }
  }
  throw new Error(`could not lock ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error:\n${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createRootLogger(config);
  const embedded = config.databaseUrls.length === 0;
  let unlock: (() => Promise<void>) | null = null;
  let stack: Stack;
  try {
    if (embedded) unlock = await lockDataDir(config.dataDir);
    stack = await composeStack({ config, logger, databases: await openDatabases(config) });
    const wsPort = await stack.listenRealtime(config.host, config.wsPort);
    await stack.app.listen({ port: config.port, host: config.host, listenTextResolver: (address) => `listening on ${address}` });
    const restAddress = stack.app.server.address();
    const restPort = restAddress !== null && typeof restAddress === 'object' ? restAddress.port : config.port;
    process.stdout.write(`REST API:  http://${config.host}:${restPort}\nWebSocket: ws://${config.host}:${wsPort}/ws\n`);
  } catch (error) {
    if (error instanceof ConfigError) process.stderr.write(`configuration error:\n${error.message}\n`);
    else logger.fatal({ err: error }, 'start-up failed');
    await unlock?.();
    process.exit(1);
  }
  logger.info(
    { mode: embedded ? 'embedded' : 'postgres', shards: stack.databases.length, data_dir: embedded ? config.dataDir : undefined, node_id: config.nodeId },
    'chat backend ready',
  );

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown took longer than 10 s: exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    void stack
      .close()
      .then(() => unlock?.())
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  await main();
}
