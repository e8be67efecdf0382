import { isOutage } from '../../domain/ports/health.js';
import type { EventStore, StoredEvent } from '../../domain/ports/event-store.js';

/**
 * Catch-up subscriptions: read a shard's log from a position, then keep following it live.
 *
 * There is one read path for history and for live events: the subscriber always reads the store's
 * log after the last position it delivered. New appends only wake it up — the in-process
 * `onAppended` notification when the append happened in this process, a poll every
 * `pollIntervalMs` for appends of other processes. Since a shard's log is gap-free in commit
 * order (port.ts), reading "after my cursor" can neither skip an event nor return one twice, and
 * there is no seam between history and live to get wrong. Each delivered event's position is
 * exactly the previous one + 1; a violation (which the store forbids) fails the subscription
 * loudly rather than hiding a gap.
 *
 * Delivery is at-least-once across restarts: the subscriber keeps its own checkpoint (the last
 * position it handled, per shard) and resumes from it.
 */

export type CatchUpOptions = {
  store: EventStore;
  shard: number;
  /** Deliver events with position > after (0 = from the start of the log). */
  after: number;
  /** Events read per query (default 500). */
  batchSize?: number;
  /** How often to look for appends made by other processes (default 250 ms). */
  pollIntervalMs?: number;
  /** Stops the subscription: the iterator ends after the event being delivered. */
  signal?: AbortSignal;
  /**
   * Called when a read fails because the database cannot be reached (DependencyUnavailableError);
   * the subscription waits (100 ms, doubling up to 5 s) and reads again from where it was. Any
   * other failure ends the subscription.
   */
  onOutage?: (error: unknown, failures: number) => void;
};

export class CatchUpGapError extends Error {
  override readonly name = 'CatchUpGapError';
  constructor(
    readonly shard: number,
    readonly expected: number,
    readonly got: number,
  ) {
    super(`shard ${shard}: expected log position ${expected}, got ${got}`);
  }
}

/**
 * The shard's events after `after`, history first, then live, until `signal` aborts:
 *   for await (const event of catchUp({ store, shard: 0, after: checkpoint, signal })) { ... }
 */
export async function* catchUp(options: CatchUpOptions): AsyncGenerator<StoredEvent, void, undefined> {
  const { store, shard, signal } = options;
  const batchSize = options.batchSize ?? 500;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  if (!Number.isInteger(shard) || shard < 0 || shard >= store.shardCount) throw new RangeError(`shard ${shard} does not exist (0..${store.shardCount - 1})`);
  if (!Number.isSafeInteger(options.after) || options.after < 0) throw new RangeError(`after must be a non-negative integer, got ${options.after}`);
  let cursor = options.after;
  let failures = 0;
  // Set by a notification that arrives while we read, so we never sleep past an append.
  let notified = false;
  let wake: (() => void) | null = null;
  const unsubscribe = store.onAppended((appendedShard, head) => {
    if (appendedShard !== shard || head <= cursor) return;
    notified = true;
    wake?.();
  });
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort);
  try {
    while (!signal?.aborted) {
      notified = false;
      let events: StoredEvent[];
      try {
        events = await store.readLog(shard, { after: cursor, maxCount: batchSize });
        failures = 0;
      } catch (error) {
        // The database is down (a restart, a lost connection): wait, then read from the cursor again.
        if (!isOutage(error)) throw error;
        failures++;
        options.onOutage?.(error, failures);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(5_000, 100 * 2 ** Math.min(failures - 1, 6)));
          function done() {
            clearTimeout(timer);
            wake = null;
            resolve();
          }
          wake = done; // an abort (or an append: the database is back) ends the wait early
          if (signal?.aborted) done();
        });
        continue;
      }
      for (const event of events) {
        if (event.position !== cursor + 1) throw new CatchUpGapError(shard, cursor + 1, event.position);
        cursor = event.position;
        yield event;
        if (signal?.aborted) return;
      }
      if (events.length === batchSize || notified) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pollIntervalMs);
        function done() {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = done;
        if (notified || signal?.aborted) done();
      });
    }
  } finally {
    unsubscribe();
    signal?.removeEventListener('abort', onAbort);
  }
}

export type Subscription = {
  /** The last position handled per shard (a checkpoint to resume from). */
  positions(): number[];
  /** Stops every shard's loop and waits for the handler calls in flight. */
  stop(): Promise<void>;
  /** Settles when the subscription ends: rejects with the first handler or store error. */
  readonly done: Promise<void>;
};

/**
 * Follows every shard: `handler` is called for each event, one at a time per shard, in log
 * order (shards run concurrently). `from[shard]` is the last position already handled (default 0).
 * A handler that throws stops the subscription; `done` rejects with its error.
 */
export function subscribeToAll(
  options: Omit<CatchUpOptions, 'shard' | 'after' | 'signal'> & { from?: readonly number[]; handler: (event: StoredEvent) => void | Promise<void> },
): Subscription {
  const controller = new AbortController();
  const positions = Array.from({ length: options.store.shardCount }, (_, shard) => options.from?.[shard] ?? 0);
  const loops = positions.map(async (after, shard) => {
    for await (const event of catchUp({ ...options, shard, after, signal: controller.signal })) {
      await options.handler(event);
      positions[shard] = event.position;
    }
  });
  const done = Promise.all(loops).then(
    () => undefined,
    (error: unknown) => {
      controller.abort();
      throw error;
    },
  );
  done.catch(() => {});
  return {
    positions: () => [...positions],
    async stop() {
      controller.abort();
      await Promise.allSettled(loops);
    },
    done,
  };
}
