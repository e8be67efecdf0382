import type { Presence, PresenceStatus, PresenceStore, SignalChange } from '../../gateways/ports/presence.js';
import {
  createListeners,
  effectivePresence,
  presenceStoreClosed,
  resolvePresenceOptions,
  type PresenceOptions,
} from './options.js';

/**
 * In-process PresenceStore for the embedded default (one process, one node).
 *
 * Expiry is computed from the clock on every read; `sweep()` removes what expired and publishes
 * the resulting offline / stopped-typing changes (run it on an interval, or pass `sweepEveryMs`).
 * Listeners are called synchronously, after the state changed.
 */
export type MemoryPresenceStoreOptions = PresenceOptions;

type Connection = { nodeId: string; beat: number };
type UserState = {
  connections: Map<string, Connection>;
  explicit: 'away' | 'offline' | undefined;
  lastSeen: number | null;
  /** status|last_seen last published, so only real changes are published. */
  shown: string | undefined;
};

export function createMemoryPresenceStore(options: MemoryPresenceStoreOptions = {}) {
  const { clock, presenceTtlMs, typingTtlMs, typingThrottleMs, sweepEveryMs, onError } = resolvePresenceOptions(options);
  const listeners = createListeners(onError);
  const users = new Map<string, UserState>();
  /** conversation id → user id → typing expiry (ms) and who was told. */
  const typists = new Map<string, Map<string, { expiresAt: number; recipients: string[] }>>();
  /** JSON [user, conversation] → time of the last accepted typing signal (ms). */
  const throttle = new Map<string, number>();
  let closed = false;

  const open = () => {
    if (closed) throw presenceStoreClosed();
  };
  const isLive = (connection: Connection, now: number) => connection.beat > now - presenceTtlMs;
  const liveCount = (state: UserState, now: number) => {
    let count = 0;
    for (const connection of state.connections.values()) if (isLive(connection, now)) count += 1;
    return count;
  };
  const presenceOf = (userId: string, state: UserState | undefined, now: number): Presence =>
    state === undefined
      ? effectivePresence(userId, 0, undefined, null)
      : effectivePresence(userId, liveCount(state, now), state.explicit, state.lastSeen);

  const userState = (userId: string): UserState => {
    let state = users.get(userId);
    if (state === undefined) {
      state = { connections: new Map(), explicit: undefined, lastSeen: null, shown: undefined };
      users.set(userId, state);
    }
    return state;
  };

  /** A sign of life: moves last_seen forward unless the user appears offline (then it is frozen). */
  const touch = (state: UserState, now: number) => {
    if (state.explicit === 'offline') return;
    if (state.lastSeen === null || state.lastSeen < now) state.lastSeen = now;
  };

  const announce = (userId: string, state: UserState, now: number) => {
    const presence = presenceOf(userId, state, now);
    const shown = `${presence.status}|${presence.last_seen ?? ''}`;
    if (shown === (state.shown ?? 'offline|')) return;
    state.shown = shown;
    listeners.emit({ kind: 'presence', presence });
  };

  const removeConnection = (userId: string, state: UserState, connectionId: string, now: number) => {
    state.connections.delete(connectionId);
    if (state.connections.size === 0) state.explicit = undefined;
    announce(userId, state, now);
  };

  const emitTyping = (conversationId: string, userId: string, isTyping: boolean, recipients: readonly string[]) => {
    const change: SignalChange = { kind: 'typing', conversation_id: conversationId, user_id: userId, is_typing: isTyping, recipients: [...recipients] };
    listeners.emit(change);
  };

  const sweep = async (): Promise<void> => {
    open();
    const now = clock();
    for (const [userId, state] of users) {
      for (const [connectionId, connection] of [...state.connections]) {
        if (!isLive(connection, now)) removeConnection(userId, state, connectionId, now);
      }
    }
    for (const [conversationId, typing] of typists) {
      for (const [userId, { expiresAt, recipients }] of [...typing]) {
        if (expiresAt > now) continue;
        typing.delete(userId);
        emitTyping(conversationId, userId, false, recipients);
      }
      if (typing.size === 0) typists.delete(conversationId);
    }
    for (const [key, acceptedAt] of throttle) {
      if (now - acceptedAt >= typingThrottleMs) throttle.delete(key);
    }
  };

  let timer: NodeJS.Timeout | undefined;
  if (sweepEveryMs !== undefined) {
    timer = setInterval(() => {
      sweep().catch(onError);
    }, sweepEveryMs);
    timer.unref();
  }

  const store = {
    async connect(userId: string, connectionId: string, nodeId: string): Promise<void> {
      open();
      const now = clock();
      const state = userState(userId);
      if (state.connections.size === 0) state.explicit = undefined;
      state.connections.set(connectionId, { nodeId, beat: now });
      touch(state, now);
      announce(userId, state, now);
    },

    async heartbeat(userId: string, connectionId: string): Promise<boolean> {
      open();
      const now = clock();
      const state = users.get(userId);
      const connection = state?.connections.get(connectionId);
      if (state === undefined || connection === undefined) return false;
      if (connection.beat < now) connection.beat = now;
      touch(state, now);
      announce(userId, state, now);
      return true;
    },

    async disconnect(userId: string, connectionId: string): Promise<void> {
      open();
      const state = users.get(userId);
      if (state === undefined || !state.connections.has(connectionId)) return;
      removeConnection(userId, state, connectionId, clock());
    },

    async setStatus(userId: string, status: PresenceStatus): Promise<void> {
      open();
      const now = clock();
      const state = users.get(userId);
      if (state === undefined || state.connections.size === 0) return;
      if (status === 'offline') {
        if (state.explicit !== 'offline') {
          touch(state, now);
          state.explicit = 'offline';
        }
      } else {
        state.explicit = status === 'away' ? 'away' : undefined;
        touch(state, now);
      }
      announce(userId, state, now);
    },

    async get(userIds: string[]): Promise<Presence[]> {
      open();
      const now = clock();
      return userIds.map((userId) => presenceOf(userId, users.get(userId), now));
    },

    async nodesOf(userIds: string[]): Promise<Map<string, string[]>> {
      open();
      const now = clock();
      const result = new Map<string, string[]>();
      for (const userId of userIds) {
        const nodes = new Set<string>();
        for (const connection of users.get(userId)?.connections.values() ?? []) {
          if (isLive(connection, now)) nodes.add(connection.nodeId);
        }
        result.set(userId, [...nodes].sort());
      }
      return result;
    },

    async typing(userId: string, conversationId: string, isTyping: boolean, recipients: readonly string[]): Promise<boolean> {
      open();
      const now = clock();
      const typing = typists.get(conversationId);
      if (!isTyping) {
        if (typing?.delete(userId) === true) {
          if (typing.size === 0) typists.delete(conversationId);
          emitTyping(conversationId, userId, false, recipients);
        }
        return true;
      }
      const key = JSON.stringify([userId, conversationId]);
      const acceptedAt = throttle.get(key);
      if (acceptedAt !== undefined && now - acceptedAt < typingThrottleMs) return false;
      throttle.set(key, now);
      const state = { expiresAt: now + typingTtlMs, recipients: [...recipients] };
      if (typing === undefined) typists.set(conversationId, new Map([[userId, state]]));
      else typing.set(userId, state);
      emitTyping(conversationId, userId, true, recipients);
      return true;
    },

    async typingIn(conversationId: string): Promise<string[]> {
      open();
      const now = clock();
      const result: string[] = [];
      for (const [userId, { expiresAt }] of typists.get(conversationId) ?? []) if (expiresAt > now) result.push(userId);
      return result.sort();
    },

    subscribe(listener: (change: SignalChange) => void): () => void {
      open();
      return listeners.add(listener);
    },

    sweep,

    // In process: never disconnected, never emptied behind the gateway's back.
    onReconnect: () => () => {},

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      listeners.clear();
    },
  } satisfies PresenceStore;
  return store;
}
