import type { FastifyInstance } from 'fastify';
import { pino, type DestinationStream, type Logger } from 'pino';
import { createConversationCommands } from '../../commands/conversations.js';
import { ROLES, type Config, type Role } from '../../infra/config/config.js';
import { resolveJwtSecret } from '../../infra/config/jwt-secret.js';
import { createJetStreamBus } from '../../infra/bus/jetstream.js';
import { createMemoryBus } from '../../infra/bus/memory.js';
import type { EventBus } from '../ports/bus.js';
import type { Relay } from '../relay/relay.js';
import { start as startRelay } from '../relay/start.js';
import { createMemoryPresenceStore } from '../../infra/presence/memory.js';
import { createRedisPresenceStore } from '../../infra/presence/redis.js';
import { Redis } from 'ioredis';
import type { PresenceStore } from '../ports/presence.js';
import { createSqlEventStore, type SqlEventStore } from '../../infra/event-store/sql-event-store.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { isConnectionFailure } from '../../infra/sql/postgres.js';
import { createSqlUserRepository, type SqlUserRepositoryOptions } from '../../infra/users/sql.js';
import type { Telemetry } from '../../infra/telemetry/index.js';
import type { UserRepository } from '../ports/users.js';
import { createProjections } from '../../projections/runtime/registry.js';
import { createConversationQueries } from '../../projections/conversations/queries.js';
import { createProjector, type Projector } from '../../projections/runtime/runtime.js';
import { createSearchQueries, searchCursorKey } from '../../projections/search/queries.js';
import { start as startProjector } from '../projector/start.js';
import { searchIndexFromConfig } from './search.js';
import { start as startApi } from '../api/start.js';
import { createTokenService, type TokenService } from '../auth/tokens.js';
import { createAccessVerifier, type AccessVerifier } from '../auth/access.js';
import { createAccountService, type AccountService } from '../api/accounts.js';
import { createSqlSessionStore } from '../../infra/sessions/sql.js';
import type { SessionStore } from '../ports/sessions.js';
import { createSqlLoginThrottle } from '../../infra/login-throttle/sql.js';
import { loadCommonPasswords } from '../../infra/users/password-policy.js';
import { websocketUrlOf } from '../api/routes/realtime.js';
import { start as startDelivery } from '../delivery/start.js';
import type { DeliveryWorker } from '../delivery/worker.js';
import { createDependencyHealth } from '../../infra/health/dependencies.js';
import type { DependencyHealth } from '../../domain/ports/health.js';
import { pushProviderFromConfig, pushQueueFromConfig } from './push.js';
import { start as startPush } from '../push/start.js';
import type { PushPipeline } from '../push/pipeline.js';
import type { PushQueue } from '../ports/push-queue.js';
import { createSqlDeviceRegistry } from '../../infra/devices/sql.js';
import type { DeviceRegistry } from '../ports/devices.js';
import type { PushProvider } from '../ports/push-provider.js';
import type { WsGateway } from '../gateway/gateway.js';
import { start as startGateway } from '../gateway/start.js';
import type { Running } from '../lib/role.js';
import { composeMedia, publicUrlOf, type MediaStack } from './media.js';
import { REDACT_PATHS, SAFE_SERIALIZERS } from '../lib/log-safety.js';
import { conversationEvents } from '../../projections/runtime/decode.js';

/**
 * The composition root: the one place that chooses adapters from the configuration.
 *
 * - no DATABASE_URL: one embedded PGlite database on disk under CHAT_DATA_DIR holds the event
 *   store (one shard), the read models and the users table — no service to install;
 * - DATABASE_URL=url1,url2,...: PostgreSQL, one database per event-store shard; read models and
 *   users live in the first.
 * - NATS_URL: the event bus is JetStream (namespace NATS_PREFIX); otherwise in-process.
 * - REDIS_URL: presence and typing live in Redis (keys under REDIS_PREFIX); otherwise in memory.
 * - ELASTICSEARCH_URL: message search uses Elasticsearch (index ELASTICSEARCH_INDEX); otherwise
 *   PostgreSQL full-text search in the read-model database.
 * - ROLES: which parts this process runs (ARCHITECTURE.md, "Deployment topologies"):
 *   api (REST), gateway (WebSocket node, routed to by NODE_ID), projector (read models),
 *   relay (store → bus), delivery (bus → gateway nodes, and push jobs for offline recipients →
 *   push queue), push (push queue → FCM or the log; PUSH_PROVIDER). `all` (default) runs every
 *   one, which is the embedded default: one process, no service needed.
 * Every role builds the store; api and gateway also build the command side and the queries.
 */

/** The whole server in one process (ROLES=all): what tests and tools compose. */
export type Stack = {
  app: FastifyInstance;
  store: SqlEventStore;
  projector: Projector;
  databases: SqlDatabase[];
  users: UserRepository;
  tokens: TokenService;
  /** The whole check of an access token (REST and WebSocket). */
  access: AccessVerifier;
  /** Login sessions. */
  sessions: SessionStore;
  /** Register, login, refresh, logout, password change, disabling. */
  accounts: AccountService;
  bus: EventBus;
  presence: PresenceStore;
  relay: Relay;
  delivery: DeliveryWorker;
  /** Push notifications to offline users. */
  push: PushPipeline;
  devices: DeviceRegistry;
  /** Not listening yet: `listenRealtime` (or a test) makes it listen. */
  gateway: WsGateway;
  /** Media: object store, media service, thumbnail worker. */
  media: MediaStack;
  /** Starts the WebSocket gateway on host:port; resolves to the bound port. */
  listenRealtime(host: string, port: number): Promise<number>;
  /** Stops serving, then the projector, then closes the store and the databases. */
  close(): Promise<void>;
};

/** What one process runs: the parts of roles it does not have are null. */
export type ProcessStack = {
  roles: readonly Role[];
  store: SqlEventStore;
  databases: SqlDatabase[];
  users: UserRepository;
  tokens: TokenService;
  access: AccessVerifier;
  sessions: SessionStore;
  accounts: AccountService;
  /** api */
  app: FastifyInstance | null;
  /** projector */
  projector: Projector | null;
  /** gateway, relay, delivery */
  bus: EventBus | null;
  /** api, gateway, delivery */
  presence: PresenceStore | null;
  /** relay */
  relay: Relay | null;
  /** delivery */
  delivery: DeliveryWorker | null;
  /** push */
  push: PushPipeline | null;
  /** api, push */
  devices: DeviceRegistry | null;
  /** gateway; not listening yet: `listenRealtime` makes it listen. */
  gateway: WsGateway | null;
  /** api, gateway, projector: the object store, the media service, the thumbnail worker. */
  media: MediaStack | null;
  /** Starts the WebSocket gateway on host:port; resolves to the bound port (rejects without the gateway role). */
  listenRealtime(host: string, port: number): Promise<number>;
  /** Stops serving, then the workers, then closes bus, presence, store and databases. */
  close(): Promise<void>;
  /** What the process knows of its dependencies (PostgreSQL, NATS, Redis, the object store). */
  health: DependencyHealth;
};

/** The process's logger: JSON lines on stdout (or `destination`), with no secret in them (log-safety.ts). */
export function createRootLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  const options = {
    level: config.logLevel,
    base: { service: 'chat-backend' },
    serializers: SAFE_SERIALIZERS,
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

// Shared with the operator tools (scripts/replay.ts, scripts/projections.ts), which must not load the whole server.
export { DataDirLockedError, lockDataDir, openDatabases } from './data-dir.js';

export type ComposeOptions = {
  config: Config;
  logger: Logger;
  /** The shard databases (index 0 also holds read models and users). The stack closes them. */
  databases: SqlDatabase[];
  users?: SqlUserRepositoryOptions;
  /** Metrics and traces (infra/telemetry); none when absent. The caller shuts it down. */
  telemetry?: Telemetry;
  /** Push overrides (tests): a provider instead of the one PUSH_PROVIDER names. The stack closes it. */
  push?: { provider?: PushProvider };
  /**
   * The process's dependency states (infra/health), fed by every adapter and read by GET /readyz;
   * pass the one `databases` were opened with. Made here when absent.
   */
  health?: DependencyHealth;
};

/**
 * Processes of a split deployment start together against the same databases: `CREATE TABLE IF
 * NOT EXISTS` run at the same moment by two of them can fail on the catalogue's unique index.
 * Running it again then finds the table.
 */
async function ensureSchemaWithRetry(what: string, ensure: () => Promise<void>, logger: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ensure();
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      logger.warn({ err: error, schema: what, attempt }, 'schema set-up failed (another process creating it?); retrying');
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

/**
 * Read-your-writes for an API process without the projector role: the projector runs in another
 * process, so the API polls the projection's checkpoint (the projector's own waitFor only wakes
 * up for its own loops).
 */
function checkpointPoller(readModels: Projector, intervalMs: number): Pick<Projector, 'waitFor'> {
  return {
    async waitFor(projection, at, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (await readModels.waitFor(projection, at, 0)) return true;
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
      }
    },
  };
}

/** Builds the parts of the configured roles (config.roles) over `databases`, and starts the workers. */
export async function composeProcess(options: ComposeOptions): Promise<ProcessStack> {
  const { config, logger, databases } = options;
  const health = options.health ?? createDependencyHealth({ logger: logger.child({ component: 'health' }) });
  const primary = databases[0];
  if (!primary) throw new RangeError('composeProcess needs at least one database');
  const has = (role: Role) => config.roles.includes(role);
  // On the embedded database no other process appends: every append wakes the relay and the
  // projector in process, and polling is only a safety net (PGlite is single-threaded: polls every
  // 20 ms would cost it more than the traffic).
  const pollIntervalMs = databases.every((db) => db.kind === 'pglite') ? Math.max(config.pollIntervalMs, 1_000) : config.pollIntervalMs;
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
  /** Starts a role (its folder's `start(deps, signal)`); closing aborts its signal and waits until it has stopped. */
  const started = async <R extends Running>(start: (signal: AbortSignal) => Promise<R>): Promise<R> => {
    const controller = new AbortController();
    const role = await start(controller.signal);
    closers.push(async () => {
      controller.abort();
      await role.stopped;
    });
    return role;
  };
  try {
    const store = await createSqlEventStore({
      shards: databases,
      ownsDatabases: false,
      // The LISTEN connection reconnects by itself; an outage is logged once by the health of the
      // pool ("dependency down"), so its failed attempts meanwhile are only debug lines.
      onListenerError: (error) =>
        isConnectionFailure(error) ? logger.debug({ err: error }, 'event store listener: the database cannot be reached; reconnecting') : logger.error({ err: error }, 'event store listener failed'),
    });
    closers.push(() => store.close());

    const users = createSqlUserRepository(primary, options.users);
    await ensureSchemaWithRetry('users', () => users.ensureSchema(), logger);
    // Every role may read sessions (api and gateway check tokens, push sends to live sessions' devices).
    const sessions = createSqlSessionStore(primary, { refreshTtlSeconds: config.refreshTokenTtlSeconds, maxLivePerUser: config.maxSessionsPerUser });
    await ensureSchemaWithRetry('sessions', () => sessions.ensureSchema(), logger);
    const throttle = createSqlLoginThrottle(primary, config.loginThrottle);
    if (has('api')) {
      await ensureSchemaWithRetry('login throttle', () => throttle.ensureSchema(), logger);
      await loadCommonPasswords(); // the password policy's list (the other roles never load it)
    }

    // Message search: Elasticsearch with ELASTICSEARCH_URL, else PostgreSQL full-text search in the read-model database.
    const searchIndex = searchIndexFromConfig(config, primary);
    closers.push(() => searchIndex.close());
    // Only the roles that write (projector) or query (api) the index set it up.
    if (has('api') || has('projector')) await ensureSchemaWithRetry('search index', () => searchIndex.setup(), logger);

    // Media: composed below, once the command side exists; the projection wakes its worker.
    let media: MediaStack | null = null;
    const readModels = createProjector({
      decode: conversationEvents,
      store,
      db: primary,
      projections: createProjections({ searchIndex, onThumbnailQueued: (at) => media?.worker?.notify(at) }),
      pollIntervalMs,
      logger: logger.child({ component: 'projector' }),
    });
    let projector: Projector | null = null;
    if (has('projector')) {
      projector = await started((signal) =>
        startProjector(
          { projector: readModels, searchIndex, logger: logger.child({ component: 'projector' }), ensureSchema: (what, ensure) => ensureSchemaWithRetry(what, ensure, logger) },
          signal,
        ),
      );
    } else if (has('api') || has('gateway')) {
      // Their queries read the read models, which may not exist yet when this process starts first.
      await ensureSchemaWithRetry('read models', () => readModels.ensureSchema(), logger);
    }

    const jwt = await resolveJwtSecret(config);
    if (jwt.source === 'generated') logger.info({ path: jwt.path }, 'generated a JWT secret (set JWT_SECRET to choose one)');
    const tokens = createTokenService({ secret: jwt.secret, ttlSeconds: config.jwtTtlSeconds });
    const access = createAccessVerifier({ tokens, sessions, logger: logger.child({ component: 'auth' }) });

    let bus: EventBus | null = null;
    if (has('gateway') || has('relay') || has('delivery') || has('push')) {
      const busLogger = logger.child({ component: 'bus' });
      bus =
        config.natsUrl === null
          ? createMemoryBus({ logger: busLogger })
          : await createJetStreamBus({
              servers: config.natsUrl.split(','),
              prefix: config.natsPrefix,
              connectionName: `chat-backend-${config.nodeId}`,
              logger: busLogger,
              health,
            });
      const opened = bus;
      closers.push(() => opened.close());
    }

    let presence: PresenceStore | null = null;
    if (has('api') || has('gateway') || has('delivery') || has('push')) {
      const presenceLogger = logger.child({ component: 'presence' });
      presence =
        config.redisUrl === null
          ? createMemoryPresenceStore()
          : await createRedisPresenceStore({
              url: config.redisUrl,
              keyPrefix: `${config.redisPrefix}presence:`,
              nodeId: config.nodeId,
              health,
              onError: (error) => presenceLogger.warn({ err: error }, 'presence store error'),
            });
      const opened = presence;
      closers.push(() => opened.close());
    }

    let relay: Relay | null = null;
    if (has('relay')) {
      relay = await started((signal) => startRelay({ store, bus: bus!, db: primary, pollIntervalMs, logger: logger.child({ component: 'relay' }) }, signal));
    }

    // The push queue: filled by the delivery role (it plans a job per offline recipient of each
    // message), emptied by the push role's sender; one queue object when both run here. An
    // in-process queue only with a sender in this process (nothing else would ever empty it).
    let pushQueue: PushQueue | null = null;
    if (has('push') || (has('delivery') && config.natsUrl !== null)) {
      pushQueue = await pushQueueFromConfig(config, logger.child({ component: 'push' }), health);
      const opened = pushQueue;
      closers.push(() => opened.close());
    }

    let delivery: DeliveryWorker | null = null;
    if (has('delivery')) {
      const queue = pushQueue;
      delivery = await started((signal) =>
        startDelivery(
          {
            bus: bus!,
            store,
            presence: presence!,
            logger: logger.child({ component: 'delivery' }),
            tracing: options.telemetry?.tracing,
            ...(queue !== null ? { push: { queue } } : {}),
          },
          signal,
        ),
      );
    }

    let devices: DeviceRegistry | null = null;
    if (has('api') || has('push')) {
      const registry = createSqlDeviceRegistry(primary);
      await ensureSchemaWithRetry('devices', () => registry.ensureSchema(), logger);
      devices = registry;
    }

    let push: PushPipeline | null = null;
    if (has('push')) {
      const pushLogger = logger.child({ component: 'push' });
      const provider = options.push?.provider ?? (await pushProviderFromConfig(config, pushLogger));
      push = await started((signal) =>
        startPush(
          {
            queue: pushQueue!,
            presence: presence!,
            users,
            devices: devices!,
            logger: pushLogger,
            provider,
            settings: { quietMs: config.push.batchQuietMs, maxDelayMs: config.push.batchMaxDelayMs, minIntervalMs: config.push.minIntervalMs },
          },
          signal,
        ),
      );
    }

    // Ended sessions: this process's gateway (if any) re-checks its connections at once.
    let gatewayHere: WsGateway | null = null;
    const accounts = createAccountService({
      users,
      sessions,
      throttle,
      tokens,
      devices: devices ?? undefined,
      passwordMinLength: config.passwordMinLength,
      logger: logger.child({ component: 'auth' }),
      onSessionsEnded: () => void gatewayHere?.recheckSessions(),
    });

    const queries = createConversationQueries(primary);
    // The read model's memberships let the command side refuse strangers without reading streams.
    const commands = createConversationCommands({ store, users, clock: () => new Date(), memberships: queries });

    if (has('api') || has('projector') || has('gateway')) {
      media = await composeMedia({
        config,
        logger: logger.child({ component: 'media' }),
        db: primary,
        jwtSecret: jwt.secret,
        commands,
        projector,
        // The media service checks uploads before a media message is accepted (REST and WebSocket).
        api: has('api') || has('gateway'),
        publicUrl: () => publicUrlOf(config, app),
        ensureSchema: (what, ensure) => ensureSchemaWithRetry(what, ensure, logger),
        health,
      });
      const opened = media;
      closers.push(() => opened.close());
    }

    let gateway: WsGateway | null = null;
    if (has('gateway')) {
      gateway = await started((signal) =>
        startGateway(
          {
        nodeId: config.nodeId,
        tokens: access,
        sessions,
        sessionCheckIntervalMs: config.sessionCheckIntervalMs,
        commands,
        store,
        queries,
        presence: presence!,
        bus: bus!,
        logger: logger.child({ component: 'ws', node: config.nodeId }),
        metrics: options.telemetry?.metrics,
        tracing: options.telemetry?.tracing,
        media: media?.service ?? undefined,
        rateLimit: { perSecond: config.wsRateLimit, burst: 2 * config.wsRateLimit, floodFrames: Math.max(1_000, 5 * config.wsRateLimit) },
        caps: {
          perUser: config.wsLimits.maxConnectionsPerUser,
          perAddress: config.wsLimits.maxConnectionsPerAddress,
          unauthenticatedPerAddress: config.wsLimits.maxUnauthenticatedPerAddress,
        },
        trustedProxies: config.trustedProxies,
        syncRate: { perSecond: config.wsLimits.syncCursorsPerSecond, burst: 5 * config.wsLimits.syncCursorsPerSecond },
        hellosPerMinute: config.wsLimits.hellosPerMinute,
        feedDeadlineMs: config.deliveryFeedDeadlineMs,
          },
          signal,
        ),
      );
      gatewayHere = gateway;
    }
    let websocketPort: number | null = null;

    let app: FastifyInstance | null = null;
    if (has('api')) {
      // With Redis, the API processes share their rate limits there (a client of its own that fails
      // fast while Redis is down: the limits then let requests through, app.ts).
      let rateLimitStore: { redis: Redis; prefix: string } | undefined;
      if (config.redisUrl !== null) {
        const redis = new Redis(config.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectionName: `chat-backend-${config.nodeId}-rate-limit` });
        redis.on('error', () => {}); // reported by the presence store's client of the same server
        closers.push(async () => redis.disconnect()); // nothing to flush: counters live in Redis
        await redis.connect();
        rateLimitStore = { redis, prefix: `${config.redisPrefix}rate-limit:` };
      }
      const api = await started((signal) =>
        startApi(
          {
          rateLimitStore,
          settings: {
            maxMessageBytes: config.maxMessageBytes,
            rateLimitMax: config.rateLimitMax,
            rateLimitWindowMs: config.rateLimitWindowMs,
            readYourWritesTimeoutMs: config.readYourWritesTimeoutMs,
            authFailureLimitMax: config.authFailureLimitMax,
            authRateLimitMax: config.authRateLimitMax,
            trustedProxies: config.trustedProxies,
            passwordMinLength: config.passwordMinLength,
          },
          logger: logger.child({ component: 'http' }),
          access,
          accounts,
          users,
          commands,
          queries,
          projector: projector ?? checkpointPoller(readModels, Math.min(config.pollIntervalMs, 20)),
          search: createSearchQueries({ db: primary, index: searchIndex, cursorKey: searchCursorKey(jwt.secret) }),
          devices: devices ?? undefined,
          media: media?.service ?? undefined,
          mediaFiles: media?.localFiles ?? undefined,
          health,
          sessions,
          realtime: { presence: presence!, websocketUrl: () => websocketUrlOf(config, websocketPort) },
          },
          signal,
        ),
      );
      app = api.app;
    }

    return {
      roles: config.roles,
      app,
      store,
      projector,
      databases,
      users,
      tokens,
      access,
      sessions,
      accounts,
      bus,
      presence,
      relay,
      delivery,
      push,
      devices,
      gateway,
      media,
      async listenRealtime(host: string, port: number) {
        if (gateway === null) throw new Error(`this process has no gateway role (ROLES=${config.roles.join(',')})`);
        websocketPort = await gateway.listen(host, port);
        return websocketPort;
      },
      close: closeAll,
      health,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** Builds the whole server in one process (config.roles must be every role, ROLES=all). */
export async function composeStack(options: ComposeOptions): Promise<Stack> {
  const missing = ROLES.filter((role) => !options.config.roles.includes(role));
  if (missing.length > 0) throw new RangeError(`composeStack builds every role; the configuration leaves out ${missing.join(', ')} (use composeProcess)`);
  const p = await composeProcess(options);
  const { app, projector, bus, presence, relay, delivery, gateway, push, devices, media } = p;
  if (!app || !projector || !bus || !presence || !relay || !delivery || !gateway || !push || !devices || !media) {
    await p.close();
    throw new Error('composeStack: a role was not built');
  }
  return { ...p, app, projector, bus, presence, relay, delivery, gateway, push, devices, media };
}
