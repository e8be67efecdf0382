import { z } from 'zod';
import type { Presence, PresenceStatus, SignalChange } from '../../gateways/ports/presence.js';

/** Options every PresenceStore adapter takes (validated and frozen at creation). */
export type PresenceOptions = {
  /** Milliseconds since the epoch; `Date.now` by default. Tests pass a fake one. */
  clock?: () => number;
  /** A connection without a heartbeat for this long no longer counts (default 120 s). */
  presenceTtlMs?: number;
  /** A typing state lasts this long after its last accepted signal (default 3 s). */
  typingTtlMs?: number;
  /** At most one accepted `typing(..., true)` per user and conversation in this window (default 1 s). */
  typingThrottleMs?: number;
  /**
   * Runs `sweep()` on an (unref'd) interval of this many ms; off by default: gateways drive
   * `sweep()` themselves. `close()` stops it.
   */
  sweepEveryMs?: number;
  /** Errors nobody awaits: a listener that threw, a failed timed sweep, a rejected signal. */
  onError?: (error: unknown) => void;
};

export const PRESENCE_DEFAULTS = Object.freeze({
  presenceTtlMs: 120_000,
  typingTtlMs: 3_000,
  typingThrottleMs: 1_000,
});

const durationMs = z.number().int().positive().max(2 ** 31 - 1);

const optionsSchema = z.object({
  presenceTtlMs: durationMs.default(PRESENCE_DEFAULTS.presenceTtlMs),
  typingTtlMs: durationMs.default(PRESENCE_DEFAULTS.typingTtlMs),
  typingThrottleMs: durationMs.default(PRESENCE_DEFAULTS.typingThrottleMs),
  sweepEveryMs: durationMs.optional(),
});

export type ResolvedPresenceOptions = Readonly<{
  clock: () => number;
  presenceTtlMs: number;
  typingTtlMs: number;
  typingThrottleMs: number;
  sweepEveryMs: number | undefined;
  onError: (error: unknown) => void;
}>;

export function resolvePresenceOptions(options: PresenceOptions): ResolvedPresenceOptions {
  const parsed = optionsSchema.safeParse({
    presenceTtlMs: options.presenceTtlMs,
    typingTtlMs: options.typingTtlMs,
    typingThrottleMs: options.typingThrottleMs,
    sweepEveryMs: options.sweepEveryMs,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid presence store option ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return Object.freeze({
    ...parsed.data,
    sweepEveryMs: parsed.data.sweepEveryMs,
    clock: options.clock ?? Date.now,
    onError: options.onError ?? (() => {}),
  });
}

export function presenceStoreClosed(): Error {
  return new Error('presence store is closed');
}

/** The presence a user shows, from their live connection count, explicit status and last seen (ms). */
export function effectivePresence(
  userId: string,
  liveConnections: number,
  explicit: 'away' | 'offline' | undefined,
  lastSeenMs: number | null,
): Presence {
  const lastSeen = lastSeenMs === null ? null : new Date(lastSeenMs).toISOString();
  let status: PresenceStatus = 'offline';
  if (liveConnections > 0) status = explicit ?? 'online';
  return { user_id: userId, status, last_seen: status === 'offline' ? lastSeen : null };
}

/** Listener registry: one throwing listener neither breaks the store nor the other listeners. */
export function createListeners(onError: (error: unknown) => void) {
  const listeners = new Set<(change: SignalChange) => void>();
  return {
    add(listener: (change: SignalChange) => void): () => void {
      // A wrapper per call, so subscribing the same function twice gives two subscriptions.
      const entry = (change: SignalChange) => listener(change);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    emit(change: SignalChange): void {
      for (const listener of [...listeners]) {
        try {
          listener(change);
        } catch (error) {
          onError(error);
        }
      }
    },
    clear(): void {
      listeners.clear();
    },
  };
}
