import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Redis, type ChainableCommander } from 'ioredis';
import { z } from 'zod';
import type { Presence, PresenceStatus, PresenceStore, SignalChange } from '../../gateways/ports/presence.js';
import {
  createListeners,
  effectivePresence,
  presenceStoreClosed,
  resolvePresenceOptions,
  type PresenceOptions,
} from './options.js';
import * as lua from './redis-scripts.js';
import { DependencyUnavailableError, unreported, type DependencyRegistry } from '../../domain/ports/health.js';

/**
 * PresenceStore on Redis (ioredis), shared by every gateway node using the same `keyPrefix`.
 *
 * - Connections: a sorted set per user scored by last heartbeat (the store's clock), their node
 *   ids in a hash, and one index sorted set that `sweep()` scans for stale heartbeats. Every
 *   change is one Lua script (see redis-scripts.ts), so two nodes sweeping or disconnecting at
 *   once publish one offline change, never two, and last_seen is written in the same step.
 * - Typing: a throttle key per user and conversation (time of the last accepted signal, PX as a
 *   backstop) and a sorted set per conversation scored by expiry; `sweep()` ends expired ones
 *   and publishes "stopped typing" (no keyspace notifications needed).
 * - Changes go out on one pub/sub channel, `<keyPrefix>signals`, as JSON published by the
 *   scripts; a dedicated subscriber connection validates each with zod and drops (and counts)
 *   anything else. A node's own changes reach its listeners through Redis too.
 * Node clocks should agree within a few seconds: scores are written with each node's clock.
 * Meant for a single Redis (or a primary); keys of one user do not share a cluster slot.
 */
export type RedisPresenceStoreOptions = PresenceOptions & {
  /** Prefix of every key and of the channel, e.g. `chat:presence:`. */
  keyPrefix: string;
  /** Tags published signals with their origin (debugging); a random id by default. */
  nodeId?: string;
  /** Where the store registers Redis (name "redis", probed with PING) and reports its connection's state. */
  health?: DependencyRegistry;
} & (
    | {
        /** The store opens (and closes) its own connections. */
        url: string;
      }
    | {
        /** A connected client the caller owns (not closed by the store); must have no keyPrefix option. */
        redis: Redis;
      }
  );

export type RedisPresenceStats = { signalsReceived: number; signalsRejected: number };
export type RedisPresenceStore = PresenceStore & { stats(): RedisPresenceStats };

/** Garbage-collection backstops beyond the TTLs that the scores decide. */
const BACKSTOP_SLACK_MS = 60_000;
const SWEEP_BATCH = 200;
const SWEEP_MAX_BATCHES = 500;

const statusSchema = z.enum(['online', 'away', 'offline']);
const msSchema = z.number().int().nonnegative().max(8_640_000_000_000_000);

const signalSchema = z.discriminatedUnion('kind', [
  z.object({
    v: z.literal(1),
    kind: z.literal('presence'),
    user_id: z.string(),
    status: statusSchema,
    last_seen_ms: msSchema.optional(),
    origin: z.string(),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal('typing'),
    conversation_id: z.string(),
    user_id: z.string(),
    is_typing: z.boolean(),
    recipients: z.array(z.string()),
    origin: z.string(),
  }),
]);

/** A signal from the channel, or undefined when it is not one of ours. */
export function decodeSignal(message: string): SignalChange | undefined {
  let json: unknown;
  try {
    json = JSON.parse(message);
  } catch {
    return undefined;
  }
  const parsed = signalSchema.safeParse(json);
  if (!parsed.success) return undefined;
  const signal = parsed.data;
  if (signal.kind === 'typing') {
    return { kind: 'typing', conversation_id: signal.conversation_id, user_id: signal.user_id, is_typing: signal.is_typing, recipients: signal.recipients };
  }
  const presence: Presence = {
    user_id: signal.user_id,
    status: signal.status,
    last_seen: signal.status === 'offline' && signal.last_seen_ms !== undefined ? new Date(signal.last_seen_ms).toISOString() : null,
  };
  return { kind: 'presence', presence };
}

const scriptReplies = {
  number: z.number(),
  get: z.tuple([statusSchema, z.string().regex(/^\d+$/).nullable()]),
  nodesMany: z.array(z.array(z.string().nullable())),
};

/** Users looked up by one NODES_MANY call: a delivery batch's recipients take one call, not one each. */
const NODES_PER_CALL = 500;

const SCRIPTS = {
  presenceConnect: { lua: lua.CONNECT, numberOfKeys: 4 },
  presenceHeartbeat: { lua: lua.HEARTBEAT, numberOfKeys: 4 },
  presenceRemove: { lua: lua.REMOVE, numberOfKeys: 4 },
  presenceSetStatus: { lua: lua.SET_STATUS, numberOfKeys: 2 },
  presenceGet: { lua: lua.GET, numberOfKeys: 2, readOnly: true },
  presenceNodesMany: { lua: lua.NODES_MANY, readOnly: true },
  presenceTypingStart: { lua: lua.TYPING_START, numberOfKeys: 4 },
  presenceTypingStop: { lua: lua.TYPING_STOP, numberOfKeys: 3 },
  presenceTypingExpire: { lua: lua.TYPING_EXPIRE, numberOfKeys: 3 },
} as const;
type ScriptName = keyof typeof SCRIPTS;
type Arg = string | number;

/** Calls a command defined with defineCommand on a client or a pipeline. */
function invoke(target: Redis | ChainableCommander, name: ScriptName, keys: string[], args: Arg[]): unknown {
  const fn: unknown = Reflect.get(target, name);
  if (typeof fn !== 'function') throw new Error(`Redis script ${name} is not defined on this client`);
  return Reflect.apply(fn, target, [...keys, ...args]);
}

async function execPipeline(pipeline: ChainableCommander): Promise<unknown[]> {
  const replies = await pipeline.exec();
  if (replies === null) throw new Error('Redis pipeline was aborted');
  return replies.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}

/** ioredis's errors for a connection that is down or went down under a command. */
const CONNECTION_ERROR = /Connection is closed|enableOfflineQueue|Reached the max retries per request|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|LOADING/;

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  const ended = once(client, 'end');
  client.quit().catch(() => client.disconnect());
  await ended;
}

const pairSchema = z.tuple([z.string(), z.string()]);
function parsePair(member: string): [string, string] | undefined {
  try {
    const parsed = pairSchema.safeParse(JSON.parse(member));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function createRedisPresenceStore(options: RedisPresenceStoreOptions): Promise<RedisPresenceStore> {
  const resolved = resolvePresenceOptions(options);
  const { presenceTtlMs, typingTtlMs, typingThrottleMs, sweepEveryMs, onError } = resolved;
  /** Whole milliseconds: scores and last_seen are stored as integers. */
  const clock = () => Math.floor(resolved.clock());
  const prefix = options.keyPrefix;
  if (prefix.length === 0) throw new Error('createRedisPresenceStore: keyPrefix must not be empty');
  const origin = options.nodeId ?? randomUUID();
  const owned = 'url' in options;
  // While Redis cannot be reached, calls fail at once (no offline queue) and a command caught by a
  // lost connection fails after one reconnection attempt: presence and typing are ephemeral, and
  // a caller waiting for a restart (a delivery batch, a Ping's heartbeat) would stall meanwhile.
  const client = owned ? new Redis(options.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 }) : options.redis;
  if (!owned && client.options.keyPrefix) {
    throw new Error('createRedisPresenceStore: pass the prefix as keyPrefix, not as the ioredis keyPrefix option');
  }
  const subscriber = client.duplicate({ lazyConnect: true, enableOfflineQueue: true });
  const health = options.health?.register('redis', async () => {
    await client.ping();
  }) ?? unreported;
  /** Errors of the connections themselves: reported as the dependency's state, not one log line per retry. */
  const connectionError = (error: unknown) => {
    if (error instanceof Error && CONNECTION_ERROR.test(error.message)) health.down(error);
    else onError(error);
  };
  subscriber.on('error', connectionError);
  if (owned) client.on('error', connectionError);
  /** The main connection went down since it was last ready: on the next 'ready', tell the reconnect listeners. */
  let lost = false;
  const reconnectListeners = new Set<() => void>();
  const onDown = () => {
    if (closed) return;
    lost = true;
    health.down(new Error('the connection to Redis closed'));
  };
  client.on('close', onDown);
  client.on('ready', () => {
    health.up();
    if (!lost || closed) return;
    lost = false;
    for (const listener of [...reconnectListeners]) {
      try {
        listener();
      } catch (error) {
        onError(error);
      }
    }
  });
  /** A failure of a call: unavailable (reported once per outage) when Redis cannot be reached, else as it is. */
  const failure = (error: unknown): unknown => {
    if (error instanceof DependencyUnavailableError) return error;
    if (client.status !== 'ready' || (error instanceof Error && (error.name === 'MaxRetriesPerRequestError' || CONNECTION_ERROR.test(error.message)))) {
      health.down(error);
      return new DependencyUnavailableError('redis', { cause: error });
    }
    return error;
  };
  /** Runs a call to Redis: fails at once with DependencyUnavailableError while Redis is not connected. */
  const guarded = async <T>(call: () => Promise<T>): Promise<T> => {
    if (client.status !== 'ready') throw failure(new Error(`Redis connection is ${client.status}`));
    try {
      return await call();
    } catch (error) {
      throw failure(error);
    }
  };

  let closed = false;
  const keys = {
    conns: (userId: string) => `${prefix}conns:${userId}`,
    nodes: (userId: string) => `${prefix}nodes:${userId}`,
    user: (userId: string) => `${prefix}user:${userId}`,
    live: `${prefix}live`,
    typing: (conversationId: string) => `${prefix}typing:${conversationId}`,
    typingTo: (conversationId: string) => `${prefix}typing-to:${conversationId}`,
    typers: `${prefix}typers`,
    throttle: (userId: string, conversationId: string) => `${prefix}throttle:${userId.length}:${userId}:${conversationId}`,
    channel: `${prefix}signals`,
  };
  const liveMember = (userId: string, connectionId: string) => JSON.stringify([userId, connectionId]);
  const typerMember = (conversationId: string, userId: string) => JSON.stringify([conversationId, userId]);
  const presenceBackstop = presenceTtlMs + BACKSTOP_SLACK_MS;
  const throttleBackstop = typingThrottleMs + BACKSTOP_SLACK_MS;
  const typingBackstop = typingTtlMs + BACKSTOP_SLACK_MS;

  for (const [name, definition] of Object.entries(SCRIPTS)) client.defineCommand(name, definition);

  const listeners = createListeners(onError);
  const stats: RedisPresenceStats = { signalsReceived: 0, signalsRejected: 0 };
  subscriber.on('message', (channel: string, message: string) => {
    if (channel !== keys.channel) return;
    stats.signalsReceived += 1;
    const change = decodeSignal(message);
    if (change === undefined) {
      stats.signalsRejected += 1;
      onError(new Error(`presence: ignored a malformed signal on ${channel}`));
      return;
    }
    listeners.emit(change);
  });

  try {
    if (owned) await client.connect();
    await subscriber.connect();
    await subscriber.subscribe(keys.channel);
  } catch (error) {
    subscriber.disconnect();
    if (owned) client.disconnect();
    throw error;
  }

  const open = () => {
    if (closed) throw presenceStoreClosed();
  };
  /** ARGV of the presence scripts' prelude. */
  const presenceArgs = (userId: string, now: number): Arg[] => [now, presenceTtlMs, keys.channel, userId, origin];
  const userKeys = (userId: string) => [keys.conns(userId), keys.nodes(userId), keys.user(userId), keys.live];
  const typingArgs = (userId: string, conversationId: string, now: number): Arg[] => [now, keys.channel, userId, origin, conversationId];
  const run = (name: ScriptName, scriptKeys: string[], args: Arg[]) =>
    guarded(async () => scriptReplies.number.parse(await invoke(client, name, scriptKeys, args)));

  /** Scans an index sorted set for members scored at or below `max` and settles each with a script. */
  const sweepIndex = async (index: string, max: number, settle: (pipeline: ChainableCommander, member: string) => void) => {
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch += 1) {
      const members = await client.zrangebyscore(index, '-inf', max, 'LIMIT', 0, SWEEP_BATCH);
      if (members.length === 0) return;
      const pipeline = client.pipeline();
      for (const member of members) settle(pipeline, member);
      await execPipeline(pipeline);
      if (members.length < SWEEP_BATCH) return;
    }
  };

  const sweep = async (): Promise<void> => {
    open();
    await guarded(sweepAll);
  };
  const sweepAll = async (): Promise<void> => {
    const now = clock();
    await sweepIndex(keys.live, now - presenceTtlMs, (pipeline, member) => {
      const pair = parsePair(member);
      if (pair === undefined) {
        pipeline.zrem(keys.live, member);
        return;
      }
      const [userId, connectionId] = pair;
      invoke(pipeline, 'presenceRemove', userKeys(userId), [...presenceArgs(userId, now), connectionId, member, 'expire']);
    });
    await sweepIndex(keys.typers, now, (pipeline, member) => {
      const pair = parsePair(member);
      if (pair === undefined) {
        pipeline.zrem(keys.typers, member);
        return;
      }
      const [conversationId, userId] = pair;
      invoke(pipeline, 'presenceTypingExpire', [keys.typing(conversationId), keys.typers, keys.typingTo(conversationId)], [...typingArgs(userId, conversationId, now), member]);
    });
  };

  let timer: NodeJS.Timeout | undefined;
  let sweeping = false;
  if (sweepEveryMs !== undefined) {
    timer = setInterval(() => {
      if (closed || sweeping || client.status !== 'ready') return; // a slow Redis must not pile sweeps up; a lost one is reported once
      sweeping = true;
      sweep()
        .catch(onError)
        .finally(() => {
          sweeping = false;
        });
    }, sweepEveryMs);
    timer.unref();
  }

  const store = {
    async connect(userId: string, connectionId: string, nodeId: string): Promise<void> {
      open();
      const now = clock();
      await run('presenceConnect', userKeys(userId), [
        ...presenceArgs(userId, now),
        connectionId,
        nodeId,
        liveMember(userId, connectionId),
        presenceBackstop,
      ]);
    },

    async heartbeat(userId: string, connectionId: string): Promise<boolean> {
      open();
      const now = clock();
      const known = await run('presenceHeartbeat', userKeys(userId), [
        ...presenceArgs(userId, now),
        connectionId,
        liveMember(userId, connectionId),
        presenceBackstop,
      ]);
      return known === 1;
    },

    async disconnect(userId: string, connectionId: string): Promise<void> {
      open();
      const now = clock();
      await run('presenceRemove', userKeys(userId), [
        ...presenceArgs(userId, now),
        connectionId,
        liveMember(userId, connectionId),
        'disconnect',
      ]);
    },

    async setStatus(userId: string, status: PresenceStatus): Promise<void> {
      open();
      const now = clock();
      await run('presenceSetStatus', [keys.conns(userId), keys.user(userId)], [...presenceArgs(userId, now), statusSchema.parse(status)]);
    },

    async get(userIds: string[]): Promise<Presence[]> {
      open();
      if (userIds.length === 0) return [];
      const now = clock();
      const replies = await guarded(() => {
        const pipeline = client.pipeline();
        for (const userId of userIds) invoke(pipeline, 'presenceGet', [keys.conns(userId), keys.user(userId)], presenceArgs(userId, now));
        return execPipeline(pipeline);
      });
      return userIds.map((userId, i) => {
        const [status, lastSeen] = scriptReplies.get.parse(replies[i]);
        const live = status === 'offline' ? 0 : 1;
        return effectivePresence(userId, live, status === 'online' ? undefined : status, lastSeen === null ? null : Number(lastSeen));
      });
    },

    async nodesOf(userIds: string[]): Promise<Map<string, string[]>> {
      open();
      const result = new Map<string, string[]>();
      if (userIds.length === 0) return result;
      const now = clock();
      const replies = (
        await guarded(() => {
          const pipeline = client.pipeline();
          for (let i = 0; i < userIds.length; i += NODES_PER_CALL) {
            const chunk = userIds.slice(i, i + NODES_PER_CALL);
            invoke(pipeline, 'presenceNodesMany', [String(chunk.length * 2), ...chunk.flatMap((u) => [keys.conns(u), keys.nodes(u)])], [now, presenceTtlMs]);
          }
          return execPipeline(pipeline);
        })
      ).flatMap((reply) => scriptReplies.nodesMany.parse(reply));
      userIds.forEach((userId, i) => {
        const nodes = new Set<string>();
        for (const node of replies[i] ?? []) if (node !== null) nodes.add(node);
        result.set(userId, [...nodes].sort());
      });
      return result;
    },

    async typing(userId: string, conversationId: string, isTyping: boolean, recipients: readonly string[]): Promise<boolean> {
      open();
      const now = clock();
      const member = typerMember(conversationId, userId);
      const to = JSON.stringify(recipients);
      if (!isTyping) {
        await run('presenceTypingStop', [keys.typing(conversationId), keys.typers, keys.typingTo(conversationId)], [...typingArgs(userId, conversationId, now), member, to]);
        return true;
      }
      const accepted = await run(
        'presenceTypingStart',
        [keys.throttle(userId, conversationId), keys.typing(conversationId), keys.typers, keys.typingTo(conversationId)],
        [...typingArgs(userId, conversationId, now), member, typingThrottleMs, typingTtlMs, throttleBackstop, typingBackstop, to],
      );
      return accepted === 1;
    },

    async typingIn(conversationId: string): Promise<string[]> {
      open();
      const now = clock();
      const users = await guarded(() => client.zrangebyscore(keys.typing(conversationId), `(${now}`, '+inf'));
      return users.sort();
    },

    subscribe(listener: (change: SignalChange) => void): () => void {
      open();
      return listeners.add(listener);
    },

    sweep,

    onReconnect(listener: () => void): () => void {
      open();
      reconnectListeners.add(listener);
      return () => {
        reconnectListeners.delete(listener);
      };
    },

    stats(): RedisPresenceStats {
      return { ...stats };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      listeners.clear();
      reconnectListeners.clear();
      await quit(subscriber);
      if (owned) await quit(client);
    },
  } satisfies RedisPresenceStore;
  return store;
}
