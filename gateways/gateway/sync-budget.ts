import { SYNC_CURSOR_BURST, SYNC_CURSORS_PER_S } from '../protocol/index.js';

/**
 * The Sync work a gateway node takes from one user: a bucket of cursors per user (not per
 * connection, so reconnecting does not refill it), refilled at `perSecond` up to `burst`
 * (PROTOCOL.md "Limits"). A frame is taken while the bucket is not empty and charged all its
 * cursors, possibly into debt: a frame of MAX_CURSORS is then always taken eventually, whatever
 * the burst, and the debt is paid back in time before the next one. Replays that read long
 * conversations are charged more afterwards (`charge`).
 */
export type SyncRate = { perSecond: number; burst: number };

export const DEFAULT_SYNC_RATE: SyncRate = Object.freeze({ perSecond: SYNC_CURSORS_PER_S, burst: SYNC_CURSOR_BURST });

export type SyncAdmission = { ok: true } | { ok: false; retryAfterMs: number };

export interface SyncBudget {
  readonly rate: SyncRate;
  /** Takes a frame of `cursors` cursors for `userId` if the bucket is not empty. */
  take(userId: string, cursors: number): SyncAdmission;
  /** Charges work already done (a long replay): the bucket may go further into debt. */
  charge(userId: string, cursors: number): void;
  /** Forgets users whose bucket is full again (the gateway's sweep calls it). */
  sweep(): void;
  /** Users with a bucket that is not full (tests, stats). */
  size(): number;
}

type Bucket = { allowance: number; at: number };

export function createSyncBudget(rate: SyncRate, clock: () => number): SyncBudget {
  if (!(rate.perSecond > 0) || !(rate.burst >= 1)) throw new RangeError(`sync budget: expected perSecond > 0 and burst >= 1, got ${JSON.stringify(rate)}`);
  const buckets = new Map<string, Bucket>();

  function bucketOf(userId: string, now: number): Bucket {
    let bucket = buckets.get(userId);
    if (bucket === undefined) {
      bucket = { allowance: rate.burst, at: now };
      buckets.set(userId, bucket);
      return bucket;
    }
    bucket.allowance = Math.min(rate.burst, bucket.allowance + ((now - bucket.at) * rate.perSecond) / 1000);
    bucket.at = now;
    return bucket;
  }

  return {
    rate,
    take(userId, cursors) {
      const bucket = bucketOf(userId, clock());
      if (bucket.allowance < 1) return { ok: false, retryAfterMs: Math.max(1, Math.ceil(((1 - bucket.allowance) * 1000) / rate.perSecond)) };
      bucket.allowance -= cursors;
      return { ok: true };
    },
    charge(userId, cursors) {
      if (cursors <= 0) return;
      bucketOf(userId, clock()).allowance -= cursors;
    },
    sweep() {
      const now = clock();
      for (const [userId, bucket] of buckets) {
        if (bucket.allowance + ((now - bucket.at) * rate.perSecond) / 1000 >= rate.burst) buckets.delete(userId);
      }
    },
    size: () => buckets.size,
  };
}
