import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * The server's configuration: one zod schema over environment variables, parsed once, frozen.
 * This module is the only one that reads `process.env` (tests and scripts aside). A wrong value
 * stops start-up with a ConfigError whose message names the variable; secrets are never echoed.
 * An empty variable counts as unset.
 */

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * What a process runs (ROLES). `all` (the default) is every role in one process; a split
 * deployment runs several processes with different roles over shared services (ARCHITECTURE.md,
 * "Deployment topologies").
 */
export const ROLES = ['api', 'gateway', 'projector', 'relay', 'delivery', 'push'] as const;
export type Role = (typeof ROLES)[number];
/** Roles that use the event bus (relay publishes, delivery and push consume, gateways receive node messages). */
const BUS_ROLES: readonly Role[] = ['gateway', 'relay', 'delivery', 'push'];
/** Roles that use the presence store (REST signals, sockets, routing deliveries, push skips online users). */
const PRESENCE_ROLES: readonly Role[] = ['api', 'gateway', 'delivery', 'push'];

export type Config = Readonly<{
  /** 0 asks the OS for a free port. */
  port: number;
  host: string;
  /** Absolute path of the data directory (embedded database, generated JWT secret). */
  dataDir: string;
  /** One PostgreSQL URL per shard; empty: the embedded PGlite database under dataDir. */
  databaseUrls: readonly string[];
  /** null: generated once and kept in `${dataDir}/jwt-secret` (see jwt-secret.ts). */
  jwtSecret: string | null;
  /** Lifetime of an access token (15 minutes by default; clients refresh it). */
  jwtTtlSeconds: number;
  /** A login session ends this long after its last refresh (sliding). */
  refreshTokenTtlSeconds: number;
  /** Live login sessions one user may hold; a login past it ends the least recently used one. */
  maxSessionsPerUser: number;
  /** Shortest password accepted at registration and password change. */
  passwordMinLength: number;
  /** The per-account login throttle (infra/login-throttle). */
  loginThrottle: Readonly<{ freeAttempts: number; baseMs: number; maxMs: number }>;
  /** Failed logins and bad tokens allowed per client address per RATE_LIMIT_WINDOW_MS. */
  authFailureLimitMax: number;
  /** Requests that hash a password (register, login, password change) per client address (per user for a password change) per RATE_LIMIT_WINDOW_MS. */
  authRateLimitMax: number;
  /**
   * Reverse proxies (IP addresses or CIDR ranges) whose X-Forwarded-For names the client: for a
   * connection or request from one of them, the client address is the right-most X-Forwarded-For entry that
   * is not itself a trusted proxy (per-address limits of the REST API and the gateway). Empty (the default): the TCP peer is the client.
   */
  trustedProxies: readonly string[];
  /** How often a gateway re-checks the sessions of its connections (a revoked one is closed within this). */
  sessionCheckIntervalMs: number;
  maxMessageBytes: number;
  rateLimitMax: number;
  rateLimitWindowMs: number;
  logLevel: LogLevel;
  readYourWritesTimeoutMs: number;
  /** Port of the WebSocket gateway (0: any free port; GET /api/v1/realtime tells clients which). */
  wsPort: number;
  /** This process's gateway node id (delivery routes to it); random per start unless set. */
  nodeId: string;
  /** NATS servers (comma-separated URLs) for the JetStream bus; null: the in-process memory bus. */
  natsUrl: string | null;
  /** Namespace of the bus's subjects, stream and consumers. */
  natsPrefix: string;
  /** Redis URL for presence and typing; null: in memory (one process). */
  redisUrl: string | null;
  /** Prefix of every Redis key and channel. */
  redisPrefix: string;
  /** The roles this process runs, in the order of ROLES (every one for ROLES=all). */
  roles: readonly Role[];
  /** How often the relay and the projector look for events appended by other processes. */
  pollIntervalMs: number;
  /** Request frames per second per WebSocket connection (bursts of twice as many). */
  wsRateLimit: number;
  /** Caps on a gateway node's WebSocket connections and on the Sync work one user may ask of it. */
  wsLimits: WsLimitsConfig;
  /**
   * A message sent through a gateway node not delivered back to it within this long means its
   * delivery feed stalled: the node tells its connections to sync (ms).
   */
  deliveryFeedDeadlineMs: number;
  /** Base URL clients reach this server at (links it signs); null: http://HOST:<bound port>. */
  publicUrl: string | null;
  /** The WebSocket URL GET /api/v1/realtime gives clients; null: ws://HOST:<the gateway's bound port>/ws (never a request's Host). */
  publicWsUrl: string | null;
  /** Media uploads: limits, allowlist, URL lifetimes, and S3 (null: local disk under dataDir/media). */
  media: MediaConfig;
  /** Elasticsearch nodes for message search; empty: PostgreSQL full-text search in the read-model database. */
  elasticsearchUrls: readonly string[];
  /** Name of the Elasticsearch index holding the messages (its checkpoints live in `<name>-checkpoints`). */
  elasticsearchIndex: string;
  /** Push notifications: provider, FCM credentials, batching and the per-user rate limit. */
  push: PushConfig;
}>;

/** A cap of 0 means no cap. */
export type WsLimitsConfig = Readonly<{
  /** Connections of one user on one gateway node. */
  maxConnectionsPerUser: number;
  /** Connections from one client address on one gateway node (authenticated or not). */
  maxConnectionsPerAddress: number;
  /** Connections from one client address that have not completed their handshake (Hello → Welcome). */
  maxUnauthenticatedPerAddress: number;
  /** Sync cursors per second one user may have replayed by one gateway node (bursts of five times as many). */
  syncCursorsPerSecond: number;
  /** Accepted Hellos per user and gateway node per minute (0: no limit). */
  hellosPerMinute: number;
}>;

export const PUSH_PROVIDERS = ['log', 'fcm'] as const;

export type PushConfig = Readonly<{
  /** log: notifications are logged, not sent (embedded default); fcm: Firebase Cloud Messaging. */
  provider: (typeof PUSH_PROVIDERS)[number];
  /** Path of the FCM service-account JSON key (required for fcm). */
  fcmCredentialsFile: string | null;
  /** FCM project; null: the service account's project_id. */
  fcmProjectId: string | null;
  /** A user's batch goes out after this long without a new message for them... */
  batchQuietMs: number;
  /** ...and at the latest this long after its first message. */
  batchMaxDelayMs: number;
  /** At most one notification per user per this interval. */
  minIntervalMs: number;
}>;

export type MediaConfig = Readonly<{
  maxBytes: number;
  /** Lower-case `type/subtype` entries; `type/*` allows a whole family. */
  allowedTypes: readonly string[];
  uploadUrlTtlSeconds: number;
  downloadUrlTtlSeconds: number;
  s3: Readonly<{
    bucket: string;
    region: string;
    endpoint: string | null;
    /** null: the AWS SDK's default credential chain (environment, profile, instance role). */
    credentials: Readonly<{ accessKeyId: string; secretAccessKey: string }> | null;
    forcePathStyle: boolean;
    createBucket: boolean;
  }> | null;
}>;

/** Images, videos, audio and common documents; no SVG or HTML (they run scripts when opened inline). */
export const DEFAULT_MEDIA_TYPES = Object.freeze([
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/heic', 'image/heif', 'image/avif',
  'video/mp4', 'video/quicktime', 'video/webm', 'video/3gpp', 'video/x-matroska',
  'audio/mpeg', 'audio/mp4', 'audio/aac', 'audio/ogg', 'audio/webm', 'audio/wav',
  'application/pdf', 'text/plain', 'text/csv', 'application/rtf', 'application/zip',
  'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.ms-powerpoint', 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text', 'application/vnd.oasis.opendocument.spreadsheet', 'application/vnd.oasis.opendocument.presentation',
]);

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    /** The variables that were wrong. */
    readonly variables: readonly string[],
  ) {
    super(message);
  }
}

const unsetIfEmpty = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);

function integer(min: number, max: number, fallback: number) {
  return z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .transform((raw, ctx) => {
        const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
        if (!Number.isSafeInteger(n) || n < min || n > max) {
          ctx.addIssue({ code: 'custom', message: `expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}` });
          return z.NEVER;
        }
        return n;
      })
      .default(fallback),
  );
}

const MIME_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/([a-z0-9][a-z0-9!#$&^_.+-]{0,126}|\*)$/;

const mediaTypes = z.preprocess(
  unsetIfEmpty,
  z
    .string()
    .transform((raw, ctx) => {
      const types = raw.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
      const bad = types.filter((t) => !MIME_TYPE.test(t));
      if (types.length === 0 || bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: `expected comma-separated media types like image/png or image/*; not valid: ${JSON.stringify(bad.join(','))}` });
        return z.NEVER;
      }
      return [...new Set(types)];
    })
    .optional(),
);

const bool = (fallback: boolean) =>
  z.preprocess(
    unsetIfEmpty,
    z
      .enum(['true', 'false', '1', '0'], { error: (issue) => `expected true or false, got ${JSON.stringify(issue.input)}` })
      .default(fallback ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1'),
  );

const httpUrl = z.preprocess(
  unsetIfEmpty,
  z
    .string()
    .superRefine((raw, ctx) => {
      let ok = false;
      try {
        const url = new URL(raw);
        ok = (url.protocol === 'http:' || url.protocol === 'https:') && url.search === '' && url.hash === '';
      } catch {
        // reported below
      }
      if (!ok) ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL without query or fragment' });
    })
    .transform((raw) => raw.replace(/\/+$/, ''))
    .optional(),
);

const wsUrl = z.preprocess(
  unsetIfEmpty,
  z
    .string()
    .superRefine((raw, ctx) => {
      let ok = false;
      try {
        const url = new URL(raw);
        ok = (url.protocol === 'ws:' || url.protocol === 'wss:') && url.search === '' && url.hash === '' && url.username === '' && url.password === '';
      } catch {
        // reported below
      }
      if (!ok) ctx.addIssue({ code: 'custom', message: 'expected a ws:// or wss:// URL without credentials, query or fragment (wss://chat.example.com/ws)' });
    })
    .optional(),
);

function text(fallback: string) {
  return z.preprocess(unsetIfEmpty, z.string().default(fallback));
}

const jwtSecret = z.preprocess(
  unsetIfEmpty,
  z
    .string()
    .superRefine((s, ctx) => {
      // A secret is never echoed: only its length.
      if (s.length < 32) ctx.addIssue({ code: 'custom', message: `expected at least 32 characters, got ${s.length}` });
    })
    .optional(),
);

const logLevel = z.preprocess(
  unsetIfEmpty,
  z.enum(LOG_LEVELS, { error: (issue) => `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(issue.input)}` }).default('info'),
);

/** Comma-separated URLs of the given protocols, as a list; never echoes a URL (it may hold a password). */
function urlList(protocols: readonly string[], what: string) {
  return z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .superRefine((raw, ctx) => {
        const urls = raw.split(',').map((s) => s.trim());
        urls.forEach((url, i) => {
          let protocol = '';
          try {
            protocol = new URL(url).protocol;
          } catch {
            // reported below
          }
          if (!protocols.includes(protocol)) {
            ctx.addIssue({
              code: 'custom',
              message: `expected ${what} (${protocols.map((p) => `${p}//`).join(' or ')}); entry ${i + 1} of ${urls.length} is not one`,
            });
          }
        });
      })
      .transform((raw) => raw.split(',').map((s) => s.trim()))
      .optional(),
  );
}

/** An IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`). */
function isAddressOrRange(entry: string): boolean {
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
  return bits >= 0 && bits <= (family === 4 ? 32 : 128);
}

const addressList = z.preprocess(
  unsetIfEmpty,
  z
    .string()
    .transform((raw, ctx) => {
      const entries = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      const bad = entries.filter((e) => !isAddressOrRange(e));
      if (entries.length === 0 || bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: `expected comma-separated IP addresses or CIDR ranges (10.0.0.5, 10.0.0.0/8, fd00::/8); not valid: ${JSON.stringify(bad.join(','))}` });
        return z.NEVER;
      }
      return entries;
    })
    .optional(),
);

const roles = z.preprocess(
  unsetIfEmpty,
  z
    .string()
    .default('all')
    .transform((raw, ctx): Role[] => {
      const names = raw.split(',').map((s) => s.trim().toLowerCase());
      if (names.length === 1 && names[0] === 'all') return [...ROLES];
      const bad = names.filter((n) => !(ROLES as readonly string[]).includes(n));
      if (bad.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `expected "all" or a comma-separated list of ${ROLES.join(', ')}; got ${JSON.stringify(raw)}`,
        });
        return z.NEVER;
      }
      return ROLES.filter((role) => names.includes(role));
    }),
);

const EnvSchema = z.object({
  PORT: integer(0, 65535, 3000),
  HOST: text('127.0.0.1'),
  CHAT_DATA_DIR: text('./data'),
  DATABASE_URL: urlList(['postgres:', 'postgresql:'], 'comma-separated PostgreSQL URLs, one per shard'),
  JWT_SECRET: jwtSecret,
  JWT_TTL_SECONDS: integer(1, 31_536_000, 900),
  REFRESH_TOKEN_TTL_SECONDS: integer(60, 31_536_000, 2_592_000),
  MAX_SESSIONS_PER_USER: integer(1, 100_000, 50),
  PASSWORD_MIN_LENGTH: integer(8, 128, 15),
  LOGIN_THROTTLE_FREE_ATTEMPTS: integer(1, 1_000, 5),
  LOGIN_THROTTLE_BASE_SECONDS: integer(1, 86_400, 30),
  LOGIN_THROTTLE_MAX_SECONDS: integer(1, 604_800, 900),
  AUTH_FAILURE_LIMIT_MAX: integer(1, 1_000_000_000, 20),
  AUTH_RATE_LIMIT_MAX: integer(1, 1_000_000_000, 30),
  SESSION_CHECK_INTERVAL_MS: integer(100, 3_600_000, 10_000),
  MAX_MESSAGE_BYTES: integer(1, 16 * 1024 * 1024, 65_536),
  RATE_LIMIT_MAX: integer(1, 1_000_000_000, 600),
  RATE_LIMIT_WINDOW_MS: integer(1, 86_400_000, 60_000),
  LOG_LEVEL: logLevel,
  READ_YOUR_WRITES_TIMEOUT_MS: integer(0, 60_000, 2_000),
  WS_PORT: integer(0, 65535, 3001),
  NODE_ID: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1 to 64 letters, digits, "_" or "-"')
      .optional(),
  ),
  NATS_URL: urlList(['nats:', 'tls:'], 'comma-separated NATS server URLs'),
  NATS_PREFIX: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'expected 1 to 32 letters, digits, "_" or "-"')
      .default('chat'),
  ),
  REDIS_URL: urlList(['redis:', 'rediss:'], 'one Redis URL').superRefine((value, ctx) => {
    if (value !== undefined && value.length > 1) ctx.addIssue({ code: 'custom', message: 'expected one Redis URL, not a list' });
  }),
  REDIS_PREFIX: z.preprocess(unsetIfEmpty, z.string().max(64, 'expected at most 64 characters').default('chat:')),
  ROLES: roles,
  POLL_INTERVAL_MS: integer(1, 60_000, 20),
  WS_RATE_LIMIT: integer(1, 1_000_000, 200),
  WS_MAX_CONNECTIONS_PER_USER: integer(0, 1_000_000, 16),
  WS_MAX_CONNECTIONS_PER_ADDRESS: integer(0, 1_000_000, 256),
  WS_MAX_UNAUTHENTICATED_PER_ADDRESS: integer(0, 1_000_000, 32),
  TRUSTED_PROXIES: addressList,
  WS_SYNC_CURSOR_RATE: integer(1, 1_000_000, 200),
  WS_HELLOS_PER_MINUTE: integer(0, 1_000_000, 30),
  DELIVERY_FEED_DEADLINE_MS: integer(100, 600_000, 10_000),
  PUBLIC_URL: httpUrl,
  PUBLIC_WS_URL: wsUrl,
  MEDIA_MAX_BYTES: integer(1, 5 * 1024 * 1024 * 1024, 100_000_000),
  MEDIA_ALLOWED_TYPES: mediaTypes,
  MEDIA_UPLOAD_URL_TTL_SECONDS: integer(10, 7 * 86_400, 900),
  MEDIA_DOWNLOAD_URL_TTL_SECONDS: integer(10, 7 * 86_400, 300),
  S3_BUCKET: z.preprocess(unsetIfEmpty, z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3 to 63 lower-case letters, digits, "." or "-")').optional()),
  S3_REGION: text('us-east-1'),
  S3_ENDPOINT: httpUrl,
  S3_ACCESS_KEY_ID: z.preprocess(unsetIfEmpty, z.string().optional()),
  S3_SECRET_ACCESS_KEY: z.preprocess(unsetIfEmpty, z.string().optional()),
  S3_FORCE_PATH_STYLE: bool(false),
  S3_CREATE_BUCKET: bool(false),
  ELASTICSEARCH_URL: urlList(['http:', 'https:'], 'comma-separated Elasticsearch node URLs'),
  ELASTICSEARCH_INDEX: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]{0,199}$/, 'expected an Elasticsearch index name: lower-case letters, digits, "_", "-" or ".", not starting with one of "_-."')
      .default('chat-messages'),
  ),
  PUSH_PROVIDER: z.preprocess(
    unsetIfEmpty,
    z.enum(PUSH_PROVIDERS, { error: (issue) => `expected one of ${PUSH_PROVIDERS.join(', ')}, got ${JSON.stringify(issue.input)}` }).default('log'),
  ),
  FCM_CREDENTIALS_FILE: z.preprocess(unsetIfEmpty, z.string().optional()),
  FCM_PROJECT_ID: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .regex(/^[a-z][a-z0-9-]{4,61}[a-z0-9]$/, 'expected a Firebase project id (6 to 63 lower-case letters, digits or "-")')
      .optional(),
  ),
  PUSH_BATCH_QUIET_MS: integer(0, 60_000, 1_000),
  PUSH_BATCH_MAX_DELAY_MS: integer(0, 600_000, 3_000),
  PUSH_MIN_INTERVAL_MS: integer(0, 3_600_000, 3_000),
}).superRefine((env, ctx) => {
  if (env.PUSH_PROVIDER === 'fcm' && env.FCM_CREDENTIALS_FILE === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['FCM_CREDENTIALS_FILE'],
      message: 'FCM_CREDENTIALS_FILE is required with PUSH_PROVIDER=fcm: the path of the service-account JSON key from the Firebase console',
    });
  }
  // S3 credentials come as a pair (or neither: the AWS SDK's default chain).
  if ((env.S3_ACCESS_KEY_ID === undefined) !== (env.S3_SECRET_ACCESS_KEY === undefined)) {
    const missing = env.S3_ACCESS_KEY_ID === undefined ? 'S3_ACCESS_KEY_ID' : 'S3_SECRET_ACCESS_KEY';
    ctx.addIssue({ code: 'custom', path: [missing], message: `${missing} is required with ${missing === 'S3_ACCESS_KEY_ID' ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID'} (set both, or neither for the AWS default credential chain)` });
  }
  if (env.S3_BUCKET === undefined) {
    for (const name of ['S3_ENDPOINT', 'S3_ACCESS_KEY_ID'] as const) {
      if (env[name] !== undefined) ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: `S3_BUCKET is required with ${name}: media go to S3 only when a bucket is named` });
    }
  }
  // Combinations: a process that is one part of a split deployment shares its state through
  // services. Each rule names the variable to set.
  if (env.ROLES.length === ROLES.length) return;
  const listed = `ROLES=${env.ROLES.join(',')}`;
  if (env.DATABASE_URL === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['DATABASE_URL'],
      message: `DATABASE_URL is required when ROLES splits the server into processes (${listed}): the embedded PGlite database belongs to one process`,
    });
  }
  const usesBus = env.ROLES.filter((r) => BUS_ROLES.includes(r));
  if (env.NATS_URL === undefined && usesBus.length > 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['NATS_URL'],
      message: `NATS_URL is required when ROLES splits the server into processes (${listed}): ${usesBus.join(', ')} must share the event bus with the other processes`,
    });
  }
  const usesPresence = env.ROLES.filter((r) => PRESENCE_ROLES.includes(r));
  if (env.REDIS_URL === undefined && usesPresence.length > 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['REDIS_URL'],
      message: `REDIS_URL is required when ROLES splits the server into processes (${listed}): ${usesPresence.join(', ')} must share presence with the other processes`,
    });
  }
});

/** The variables this server reads, in the order of the README's table. */
export const CONFIG_VARIABLES = Object.keys(EnvSchema.shape);

/** Parses an environment (tests pass their own); throws ConfigError naming every bad variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = EnvSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => ({ variable: String(issue.path[0] ?? 'environment'), message: issue.message }));
    throw new ConfigError(
      // A message that already starts with its variable's name is printed as it is.
      problems.map((p) => (p.message.startsWith(`${p.variable} `) ? p.message : `${p.variable}: ${p.message}`)).join('\n'),
      problems.map((p) => p.variable),
    );
  }
  const e = result.data;
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    dataDir: resolve(e.CHAT_DATA_DIR),
    databaseUrls: Object.freeze(e.DATABASE_URL ?? []),
    jwtSecret: e.JWT_SECRET ?? null,
    jwtTtlSeconds: e.JWT_TTL_SECONDS,
    refreshTokenTtlSeconds: e.REFRESH_TOKEN_TTL_SECONDS,
    maxSessionsPerUser: e.MAX_SESSIONS_PER_USER,
    passwordMinLength: e.PASSWORD_MIN_LENGTH,
    loginThrottle: Object.freeze({
      freeAttempts: e.LOGIN_THROTTLE_FREE_ATTEMPTS,
      baseMs: e.LOGIN_THROTTLE_BASE_SECONDS * 1000,
      maxMs: Math.max(e.LOGIN_THROTTLE_BASE_SECONDS, e.LOGIN_THROTTLE_MAX_SECONDS) * 1000,
    }),
    authFailureLimitMax: e.AUTH_FAILURE_LIMIT_MAX,
    authRateLimitMax: e.AUTH_RATE_LIMIT_MAX,
    trustedProxies: Object.freeze(e.TRUSTED_PROXIES ?? []),
    sessionCheckIntervalMs: e.SESSION_CHECK_INTERVAL_MS,
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    rateLimitMax: e.RATE_LIMIT_MAX,
    rateLimitWindowMs: e.RATE_LIMIT_WINDOW_MS,
    logLevel: e.LOG_LEVEL,
    readYourWritesTimeoutMs: e.READ_YOUR_WRITES_TIMEOUT_MS,
    wsPort: e.WS_PORT,
    nodeId: e.NODE_ID ?? `node-${randomUUID()}`,
    natsUrl: e.NATS_URL?.join(',') ?? null,
    natsPrefix: e.NATS_PREFIX,
    redisUrl: e.REDIS_URL?.[0] ?? null,
    redisPrefix: e.REDIS_PREFIX,
    roles: Object.freeze(e.ROLES),
    pollIntervalMs: e.POLL_INTERVAL_MS,
    wsRateLimit: e.WS_RATE_LIMIT,
    wsLimits: Object.freeze({
      maxConnectionsPerUser: e.WS_MAX_CONNECTIONS_PER_USER,
      maxConnectionsPerAddress: e.WS_MAX_CONNECTIONS_PER_ADDRESS,
      maxUnauthenticatedPerAddress: e.WS_MAX_UNAUTHENTICATED_PER_ADDRESS,
      syncCursorsPerSecond: e.WS_SYNC_CURSOR_RATE,
      hellosPerMinute: e.WS_HELLOS_PER_MINUTE,
    }),
    deliveryFeedDeadlineMs: e.DELIVERY_FEED_DEADLINE_MS,
    publicUrl: e.PUBLIC_URL ?? null,
    publicWsUrl: e.PUBLIC_WS_URL ?? null,
    media: Object.freeze({
      maxBytes: e.MEDIA_MAX_BYTES,
      allowedTypes: Object.freeze(e.MEDIA_ALLOWED_TYPES ?? [...DEFAULT_MEDIA_TYPES]),
      uploadUrlTtlSeconds: e.MEDIA_UPLOAD_URL_TTL_SECONDS,
      downloadUrlTtlSeconds: e.MEDIA_DOWNLOAD_URL_TTL_SECONDS,
      s3:
        e.S3_BUCKET === undefined
          ? null
          : Object.freeze({
              bucket: e.S3_BUCKET,
              region: e.S3_REGION,
              endpoint: e.S3_ENDPOINT ?? null,
              credentials:
                e.S3_ACCESS_KEY_ID !== undefined && e.S3_SECRET_ACCESS_KEY !== undefined
                  ? Object.freeze({ accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY })
                  : null,
              forcePathStyle: e.S3_FORCE_PATH_STYLE,
              createBucket: e.S3_CREATE_BUCKET,
            }),
    }),
    elasticsearchUrls: Object.freeze(e.ELASTICSEARCH_URL ?? []),
    elasticsearchIndex: e.ELASTICSEARCH_INDEX,
    push: Object.freeze({
      provider: e.PUSH_PROVIDER,
      fcmCredentialsFile: e.FCM_CREDENTIALS_FILE === undefined ? null : resolve(e.FCM_CREDENTIALS_FILE),
      fcmProjectId: e.FCM_PROJECT_ID ?? null,
      batchQuietMs: e.PUSH_BATCH_QUIET_MS,
      batchMaxDelayMs: e.PUSH_BATCH_MAX_DELAY_MS,
      minIntervalMs: e.PUSH_MIN_INTERVAL_MS,
    }),
  });
}

let loaded: Config | undefined;

/** The process's configuration, parsed from `process.env` on first use. */
export function loadConfig(): Config {
  loaded ??= parseConfig(process.env);
  return loaded;
}
