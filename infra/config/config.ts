import { randomUUID } from 'node:crypto';
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
export const ROLES = ['api', 'gateway', 'projector', 'relay', 'delivery'] as const;
export type Role = (typeof ROLES)[number];
/** Roles that use the event bus (relay publishes, delivery consumes, gateways receive node messages). */
const BUS_ROLES: readonly Role[] = ['gateway', 'relay', 'delivery'];
/** Roles that use the presence store (REST signals, sockets, routing deliveries). */
const PRESENCE_ROLES: readonly Role[] = ['api', 'gateway', 'delivery'];

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
  jwtTtlSeconds: number;
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
}>;

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
  JWT_TTL_SECONDS: integer(1, 31_536_000, 86_400),
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
}).superRefine((env, ctx) => {
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
  });
}

let loaded: Config | undefined;

/** The process's configuration, parsed from `process.env` on first use. */
export function loadConfig(): Config {
  loaded ??= parseConfig(process.env);
  return loaded;
}
