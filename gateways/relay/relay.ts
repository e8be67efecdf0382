import { randomUUID } from 'node:crypto';
import type { EventStore, StoredEvent } from '../../domain/ports/event-store.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { silentLogger, type BusLogger } from '../../infra/bus/logger.js';
import type { EventBus } from '../ports/bus.js';
import { isOutage } from '../../domain/ports/health.js';
import { relayCheckpoints } from './checkpoints.js';
import { backoffDelay, resolveRetry, sleep, type RetryPolicy } from '../../infra/bus/retry.js';

/**
 * The relay: store → bus. Per shard it reads the log after its checkpoint, publishes the batch
 * (in position order) and, once the bus has acknowledged all of it, stores the checkpoint; that
 * write runs while the next batch is read and published (one checkpoint in flight at a time).
 *
 * - Never skips: the store's log is gap-free in commit order (event-store/port.ts), the relay
 *   checks that each batch continues its checkpoint without a hole, and the checkpoint never moves
 *   past an event the bus did not acknowledge.
 * - At-least-once: a crash (or a failed publish) between publish and checkpoint re-publishes the
 *   batch; the bus drops re-published event ids within its dedupe window, and consumers tolerate
 *   duplicates anyway.
 * - One publisher per shard across processes: a lease row per shard (relay-checkpoints.ts says why
 *   a lease and not an advisory lock). Relays that do not hold a shard's lease poll for it; a
 *   leader that stops hands over at once, a crashed one after its lease runs out.
 * - Woken by `store.onAppended` (appends of this process, and of others through the store's
 *   NOTIFY on PostgreSQL), and by polling every `pollIntervalMs` in case a wake-up is missed.
 */
export type RelayDeps = {
  store: EventStore;
  bus: EventBus;
  /** Where relay_checkpoints lives (created when missing). */
  db: SqlDatabase;
  /** Most events per publish (default 500). */
  batchSize?: number;
  /** How often a leader looks for events appended by other processes (default 100 ms). */
  pollIntervalMs?: number;
  /** Lease of a shard (default 10 s): how long a crashed leader keeps it. Renewed every third of it. */
  leaseMs?: number;
  /** Back-off after a failed read, publish or checkpoint (default 100 ms doubling up to 5 s). */
  retry?: RetryPolicy;
  /** Several relays (e.g. to two buses) keep apart checkpoints under different names (default 'events'). */
  name?: string;
  /** This relay's identity in the lease rows (default: a random UUID). */
  relayId?: string;
  /**
   * How long a hole in the positions read may last before the relay publishes past it (default
   * 10 s). The store's log has no holes, so this only matters if that guarantee is ever broken.
   */
  gapTimeoutMs?: number;
  logger?: BusLogger;
};

export type RelayShardStats = {
  shard: number;
  leader: boolean;
  /** Checkpoint as this relay knows it (-1 before it first led the shard). */
  position: number;
  published: number;
  batches: number;
  failures: number;
  /** Times this relay became the shard's leader. */
  acquired: number;
};

export type Relay = {
  readonly id: string;
  ensureSchema(): Promise<void>;
  /** Relays every shard until `signal` aborts, then gives its leases up. */
  run(signal: AbortSignal): Promise<void>;
  /** run() in the background. */
  start(): Promise<void>;
  stop(): Promise<void>;
  stats(): RelayShardStats[];
  /** The checkpoints and leases as stored (operators, tests). */
  checkpoints(): Promise<{ shard: number; position: number; owner: string | null; leaseValid: boolean }[]>;
};

function positiveInt(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

/** The first index where positions stop following `after` one by one (events.length when none). */
function firstHole(after: number, events: StoredEvent[]): number {
  const index = events.findIndex((event, i) => event.position !== after + 1 + i);
  return index === -1 ? events.length : index;
}

export function createRelay(deps: RelayDeps): Relay {
  const { store, bus, db } = deps;
  const batchSize = positiveInt('batchSize', deps.batchSize ?? 500);
  const pollIntervalMs = positiveInt('pollIntervalMs', deps.pollIntervalMs ?? 100);
  const leaseMs = positiveInt('leaseMs', deps.leaseMs ?? 10_000);
  const gapTimeoutMs = deps.gapTimeoutMs ?? 10_000;
  const retry = resolveRetry(deps.retry, { initialMs: 100, maxMs: 5_000 });
  const logger = deps.logger ?? silentLogger;
  const id = deps.relayId ?? randomUUID();
  const rows = relayCheckpoints(db, deps.name ?? 'events', id, leaseMs);
  const renewEveryMs = Math.max(1, Math.floor(leaseMs / 3));
  const followerPollMs = Math.max(pollIntervalMs, Math.floor(leaseMs / 4));

  const shardStats: RelayShardStats[] = Array.from({ length: store.shardCount }, (_, shard) => ({
    shard,
    leader: false,
    position: -1,
    published: 0,
    batches: 0,
    failures: 0,
    acquired: 0,
  }));
  /** Shards with appends this relay has not read yet (set by onAppended, cleared before each read). */
  const dirty = new Set<number>();
  const wakers = new Map<number, () => void>();
  let background: { controller: AbortController; done: Promise<void> } | undefined;

  function waitForAppend(shard: number, ms: number, signal: AbortSignal): Promise<void> {
    if (dirty.has(shard) || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (wakers.get(shard) === done) wakers.delete(shard);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      wakers.set(shard, done);
    });
  }

  async function relayShard(shard: number, signal: AbortSignal): Promise<void> {
    const s = shardStats[shard]!;
    let position = 0;
    let renewedAt = 0;
    let failures = 0;
    let holeSince: number | undefined;
    /**
     * The checkpoint write in flight, at most one: it is stored while the next batch is read and
     * published, so a batch's cycle does not wait for a commit of its own.
     */
    let saving: { kept: Promise<boolean>; askedAt: number } | undefined;
    /** Waits for the checkpoint in flight: false if it was refused (another relay took the lease); throws what the write threw. */
    const saved = async (): Promise<boolean> => {
      const pending = saving;
      if (pending === undefined) return true;
      saving = undefined;
      const kept = await pending.kept;
      // The lease runs from when the database was asked (its now()), not from when it answered.
      if (kept) renewedAt = Math.max(renewedAt, pending.askedAt);
      return kept;
    };
    /** Renews the lease; false when another relay holds it now. */
    const renew = async (): Promise<boolean> => {
      const askedAt = Date.now();
      if (!(await rows.renew(shard))) return false;
      renewedAt = askedAt;
      return true;
    };
    const lost = (why: string) => {
      s.leader = false;
      logger.warn({ shard, relay: id, why }, 'relay: lost the shard lease');
    };

    while (!signal.aborted) {
      try {
        if (!s.leader) {
          const askedAt = Date.now();
          const lease = await rows.acquire(shard);
          if (lease === null) {
            await sleep(followerPollMs, signal);
            continue;
          }
          s.leader = true;
          s.acquired++;
          position = lease.position;
          s.position = position;
          renewedAt = askedAt;
          logger.info({ shard, relay: id, position }, 'relay: leading the shard');
        }

        dirty.delete(shard);
        const read = await store.readLog(shard, { after: position, maxCount: batchSize });
        const hole = firstHole(position, read);
        let events = read;
        if (hole < read.length) {
          holeSince ??= Date.now();
          if (Date.now() - holeSince < gapTimeoutMs) {
            events = read.slice(0, hole); // publish up to the hole, wait for it to fill
          } else {
            logger.error(
              { shard, after: hole === 0 ? position : read[hole - 1]!.position, next: read[hole]!.position },
              'relay: positions missing from the log past gapTimeoutMs; publishing past them',
            );
          }
        } else {
          holeSince = undefined;
        }

        if (events.length === 0) {
          if (!(await saved())) {
            lost('checkpoint refused: another relay took the shard');
            continue;
          }
          if (Date.now() - renewedAt >= renewEveryMs && !(await renew())) {
            lost('renewal refused');
            continue;
          }
          const waitMs = hole < read.length ? pollIntervalMs : Math.min(pollIntervalMs, Math.max(1, renewEveryMs - (Date.now() - renewedAt)));
          await (hole < read.length ? sleep(waitMs, signal) : waitForAppend(shard, waitMs, signal));
          continue;
        }

        // A lease not renewed for a while may have run out: this process may have been stopped
        // (SIGSTOP, a long pause) while another relay took the shard over. Renew it before
        // publishing as the leader; only what the bus drops by event id can still go out twice.
        if (Date.now() - renewedAt >= renewEveryMs) {
          if (!(await saved()) || !(await renew())) {
            lost('the lease ran out while this relay was not running; another relay holds the shard');
            continue;
          }
        }
        await bus.publish(events);
        // The batch before's checkpoint has been written meanwhile; if it was refused, this batch
        // went out as a second publisher would send it (the bus drops repeated ids) and the
        // shard is given up before its checkpoint.
        if (!(await saved())) {
          lost('checkpoint refused: another relay took the shard');
          continue;
        }
        const last = events[events.length - 1]!.position;
        saving = { kept: rows.checkpoint(shard, last), askedAt: Date.now() };
        void saving.kept.catch(() => {}); // settled (and its error thrown) by saved()
        position = last;
        s.position = last;
        s.published += events.length;
        s.batches++;
        failures = 0;
      } catch (error) {
        // Let a checkpoint still in flight land before the checkpoint is read again.
        await saving?.kept.catch(() => {});
        saving = undefined;
        if (signal.aborted) break;
        failures++;
        s.failures++;
        const delayMs = backoffDelay(failures, retry);
        // An outage (database or bus unreachable) is logged once by its dependency's health.
        (isOutage(error) ? (logger.debug ?? logger.warn) : logger.error).call(
          logger,
          { err: error, shard, relay: id, failures, delayMs },
          'relay: batch failed; retrying from the checkpoint',
        );
        // Re-read the checkpoint (and re-take the lease) before going on: nothing past it was recorded.
        s.leader = false;
        await sleep(delayMs, signal);
      }
    }

    await saved().catch((error: unknown) => logger.warn({ err: error, shard }, 'relay: the last checkpoint could not be stored'));
    if (s.leader) {
      s.leader = false;
      await rows.release(shard).catch((error: unknown) => logger.warn({ err: error, shard }, 'relay: could not release the lease'));
    }
  }

  const relay: Relay = {
    id,
    ensureSchema: () => rows.ensureSchema(store.shardCount),

    async run(signal: AbortSignal): Promise<void> {
      // The table may have to be made (again) while the database is down: retry, never die of it.
      for (let failures = 1; !signal.aborted; failures++) {
        try {
          await rows.ensureSchema(store.shardCount);
          break;
        } catch (error) {
          const delayMs = backoffDelay(failures, retry);
          logger.warn({ err: error, relay: id, failures, delayMs }, 'relay: could not set up its checkpoints; retrying');
          await sleep(delayMs, signal);
        }
      }
      if (signal.aborted) return;
      const unsubscribe = store.onAppended((shard) => {
        dirty.add(shard);
        wakers.get(shard)?.();
      });
      try {
        await Promise.all(shardStats.map((_, shard) => relayShard(shard, signal)));
      } finally {
        unsubscribe();
      }
    },

    async start(): Promise<void> {
      if (background !== undefined) throw new Error('the relay is already running');
      await rows.ensureSchema(store.shardCount);
      const controller = new AbortController();
      const done = relay.run(controller.signal);
      done.catch((error: unknown) => logger.error({ err: error, relay: id }, 'relay: stopped on an error'));
      background = { controller, done };
    },

    async stop(): Promise<void> {
      const running = background;
      if (running === undefined) return;
      background = undefined;
      running.controller.abort();
      await running.done.catch(() => {});
    },

    stats: () => shardStats.map((s) => ({ ...s })),
    checkpoints: () => rows.read(),
  };
  return relay;
}
