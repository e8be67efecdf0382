import type { EventStore, StoredEvent } from '../../domain/ports/event-store.js';
import { isOutage } from '../../domain/ports/health.js';
import type { SqlClient, SqlDatabase } from '../../domain/ports/sql.js';
import type { ProjectedEvent } from './decode.js';

/**
 * The projector runtime. A projection consumes each shard's log from its checkpoint and writes its
 * read model; the checkpoint moves in the SAME transaction as the writes, so a crash at any point
 * leaves the read model exactly at its checkpoint: nothing lost, nothing applied twice.
 *
 * Several runtimes (processes) may run the same projection: the checkpoint row is locked
 * (SELECT ... FOR UPDATE) in the batch transaction and the batch is dropped if another runner moved
 * the checkpoint meanwhile, so each event's effect lands exactly once.
 */

/**
 * A read model fed by the runtime. `E` is what the projector's `decode` makes of the stored events
 * of a batch (the server's projections: conversation events parsed and upcast once, decode.ts).
 */
export interface Projection<E = ProjectedEvent> {
  readonly name: string;
  /** Idempotent DDL creating the read model's tables. */
  readonly schema: string;
  /** The tables it owns, emptied by a rebuild. */
  readonly tables: readonly string[];
  /** Applies a batch of one shard, in log order, inside the checkpoint's transaction. */
  apply(tx: SqlClient, events: readonly E[]): Promise<void>;
}

export type Logger = {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

export type ProjectorDeps<E = ProjectedEvent> = {
  store: EventStore;
  /** Where the read models and checkpoints live. */
  db: SqlDatabase;
  projections: Projection<E>[];
  /**
   * What the projections receive of a batch of stored events, made once per batch for all of them
   * (the server's: `conversationEvents`, decode.ts, each event parsed and upcast once).
   */
  decode: (events: readonly StoredEvent[]) => E[];
  batchSize?: number;
  /** How often to look for events appended by other processes (in-process appends wake it at once). */
  pollIntervalMs?: number;
  logger?: Logger;
};

export type ProjectionStatus = { projection: string; shard: number; position: number; head: number; lag: number };

const CHECKPOINTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS projection_checkpoints (
  projection text NOT NULL,
  shard int NOT NULL,
  position bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, shard)
);`;

/** Events per batch transaction when ProjectorDeps.batchSize is not given. */
export const DEFAULT_BATCH_SIZE = 500;

export interface Projector {
  ensureSchema(): Promise<void>;
  /** Creates the schemas and runs every projection over every shard in the background. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Applies everything committed so far (for tools and tests; no background loop needed).
   * `only` limits it to some projections; `onBatch` hears of each batch read (progress bars).
   */
  catchUp(options?: {
    only?: readonly string[];
    onBatch?: (batch: {
      projection: string;
      shard: number;
      events: number;
    }) => void;
  }): Promise<void>;
  /**
   * Resolves true once `projection` has applied the shard's log up to `position` (read-your-
   * writes for the caller that appended it), false after `timeoutMs`.
   */
  waitFor(projection: string, at: {
    shard: number;
    position: number;
  }, timeoutMs: number): Promise<boolean>;
  /** Empties a read model and sets its checkpoints to 0; the loops (or catchUp) replay it from position 0. */
  reset(name: string): Promise<void>;
  status(): Promise<ProjectionStatus[]>;
}

export function createProjector<E = ProjectedEvent>(deps: ProjectorDeps<E>): Projector {
  const { store, db, projections } = deps;
  const batchSize = deps.batchSize ?? DEFAULT_BATCH_SIZE;
  const pollIntervalMs = deps.pollIntervalMs ?? 250;
  const byName = new Map(projections.map((p) => [p.name, p]));
  /** Known checkpoint per `${projection}/${shard}`, for waitFor without a query. */
  const known = new Map<string, number>();
  const waiters = new Set<{ key: string; position: number; resolve: (ok: boolean) => void }>();
  const wake = new Map<number, () => void>();
  let running = false;
  let loops: Promise<void>[] = [];
  /** Back-off sleeps in progress (cut short by stop). */
  const pauses = new Set<() => void>();
  let unsubscribe: (() => void) | null = null;

  const key = (projection: string, shard: number) => `${projection}/${shard}`;

  function advanced(projection: string, shard: number, position: number) {
    const k = key(projection, shard);
    if ((known.get(k) ?? -1) < position) known.set(k, position);
    for (const w of waiters) {
      if (w.key === k && w.position <= position) {
        waiters.delete(w);
        w.resolve(true);
      }
    }
  }

  async function ensureSchema() {
    await db.exec(CHECKPOINTS_SCHEMA);
    for (const p of projections) {
      await db.exec(p.schema);
      for (let shard = 0; shard < store.shardCount; shard++) {
        await db.query(
          'INSERT INTO projection_checkpoints (projection, shard, position) VALUES ($1, $2, 0) ON CONFLICT (projection, shard) DO NOTHING',
          [p.name, shard],
        );
      }
    }
  }

  async function checkpoint(projection: string, shard: number): Promise<number> {
    const { rows } = await db.query<{ position: string | number }>(
      'SELECT position FROM projection_checkpoints WHERE projection = $1 AND shard = $2',
      [projection, shard],
    );
    return Number(rows[0]?.position ?? 0);
  }

  /**
   * This runner's view of each checkpoint: the position it last read or wrote. It saves reading
   * the checkpoint before every batch; the batch transaction still locks and compares the real
   * row, so a checkpoint moved by another runner (or a reset) is noticed there and adopted.
   */
  const cursors = new Map<string, number>();
  /** The next batch, read while the current one is applied (a backlog: catch-up, rebuild). */
  const ahead = new Map<string, { after: number; events: Promise<StoredEvent[]> }>();

  function readAhead(k: string, shard: number, after: number) {
    const events = store.readLog(shard, { after, maxCount: batchSize });
    events.catch(() => {}); // a failed read-ahead is read again (and reported) by the next step
    ahead.set(k, { after, events });
  }

  /** Processes one batch; returns how many events were read (0 = caught up). */
  async function step(projection: Projection<E>, shard: number): Promise<number> {
    const k = key(projection.name, shard);
    let from = cursors.get(k);
    const pending = ahead.get(k);
    ahead.delete(k);
    let events: StoredEvent[] = [];
    if (from !== undefined && pending !== undefined && pending.after === from) events = await pending.events.catch(() => []);
    if (events.length === 0) {
      // Caught up as far as this runner knows. Without a cursor (first step, after an error, or
      // after the live loop's periodic refresh) read the checkpoint itself: another runner may
      // have moved it, or a reset set it back to 0. Then the log after it.
      if (from === undefined) {
        from = await checkpoint(projection.name, shard);
        cursors.set(k, from);
        advanced(projection.name, shard, from);
      }
      events = await store.readLog(shard, { after: from, maxCount: batchSize });
      if (events.length === 0) return 0;
    }
    const start = from!;
    const last = events[events.length - 1]!.position;
    // A full batch means a backlog: read the next one while this one is written.
    if (events.length === batchSize) readAhead(k, shard, last);
    const applied = await db.transaction(async (tx) => {
      await tx.query(ASYNC_COMMIT);
      const { rows } = await tx.query<{ position: string | number }>(
        'SELECT position FROM projection_checkpoints WHERE projection = $1 AND shard = $2 FOR UPDATE',
        [projection.name, shard],
      );
      // Another runner moved the checkpoint since we read it: drop this batch, read again.
      const current = Number(rows[0]?.position ?? 0);
      if (current !== start) {
        cursors.set(k, current);
        return false;
      }
      await projection.apply(tx, deps.decode(events));
      await tx.query('UPDATE projection_checkpoints SET position = $3, updated_at = now() WHERE projection = $1 AND shard = $2', [
        projection.name,
        shard,
        last,
      ]);
      return true;
    }).catch((error: unknown) => {
      cursors.delete(k);
      ahead.delete(k);
      throw error;
    });
    if (applied) {
      cursors.set(k, last);
      advanced(projection.name, shard, last);
    } else ahead.delete(k);
    return events.length;
  }

  /**
   * The live loop's poll, when every projection of the shard stands at the same known position
   * with nothing read ahead: ONE read of the log for all of them (null when they stand apart).
   * Caught up, a poll is then one query per shard, not a checkpoint read and a log read per
   * projection.
   */
  async function sharedRead(shard: number): Promise<{ at: number; events: StoredEvent[] } | null> {
    let at: number | undefined;
    for (const p of projections) {
      const k = key(p.name, shard);
      const cursor = cursors.get(k);
      if (cursor === undefined || ahead.has(k) || (at !== undefined && cursor !== at)) return null;
      at = cursor;
    }
    if (at === undefined) return null;
    return { at, events: await store.readLog(shard, { after: at, maxCount: batchSize }) };
  }

  /**
   * Applies one batch to every projection of the shard in ONE transaction (one commit instead of
   * one per projection), when all their checkpoints still stand at `at`. Returns false, changing
   * nothing, when one has moved (the loop then steps them one by one, from their checkpoints).
   */
  async function applyTogether(shard: number, at: number, events: StoredEvent[]): Promise<boolean> {
    const names = projections.map((p) => p.name);
    const last = events[events.length - 1]!.position;
    const applied = await db.transaction(async (tx) => {
      await tx.query(ASYNC_COMMIT);
      const { rows } = await tx.query<{ position: string | number }>(
        'SELECT position FROM projection_checkpoints WHERE shard = $1 AND projection = ANY($2::text[]) ORDER BY projection FOR UPDATE',
        [shard, names],
      );
      if (rows.length !== names.length || rows.some((r) => Number(r.position) !== at)) return false;
      const batch = deps.decode(events); // decoded once for every projection
      for (const p of projections) await p.apply(tx, batch);
      await tx.query('UPDATE projection_checkpoints SET position = $3, updated_at = now() WHERE shard = $1 AND projection = ANY($2::text[])', [
        shard,
        names,
        last,
      ]);
      return true;
    });
    for (const p of projections) {
      if (applied) {
        cursors.set(key(p.name, shard), last);
        advanced(p.name, shard, last);
      } else cursors.delete(key(p.name, shard));
    }
    return applied;
  }

  /**
   * A failure of the loop's work: logged (quietly when a dependency is down: its health logs the
   * outage once), then the loop waits four polls. While the database is down (an outage, not one
   * projection's bug) the wait grows with each failure in a row, up to 5 s, so a database that is
   * down is not hammered; a projection that keeps failing on its own does not slow the others
   * down more than that one pause.
   */
  async function failed(failures: number, error: unknown, fields: object, message: string, level: 'warn' | 'error') {
    const log = deps.logger;
    const outage = isOutage(error);
    if (log !== undefined) {
      if (outage) (log.debug ?? log.warn).call(log, { err: error, ...fields, failures }, message);
      else log[level]({ err: error, ...fields, failures }, message);
    }
    const base = Math.min(5_000, pollIntervalMs * 4);
    await pause(outage ? Math.min(5_000, Math.max(50, base) * 2 ** Math.min(failures - 1, 10)) : base);
  }

  /** Sleeps `ms`, or less when the projector stops. */
  function pause(ms: number): Promise<void> {
    if (!running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const entry = () => {
        clearTimeout(timer);
        pauses.delete(entry);
        resolve();
      };
      const timer = setTimeout(entry, ms);
      pauses.add(entry);
    });
  }

  async function loop(shard: number) {
    let refreshedAt = Date.now();
    let failures = 0;
    while (running) {
      // Every second the cursors are dropped, so checkpoints moved by another runner or by a
      // reset are seen even when no new event arrives to reveal them.
      if (Date.now() - refreshedAt >= CURSOR_REFRESH_MS) {
        refreshedAt = Date.now();
        for (const p of projections) {
          cursors.delete(key(p.name, shard));
          ahead.delete(key(p.name, shard));
        }
      }
      let progressed = false;
      let shared: { at: number; events: StoredEvent[] } | null = null;
      try {
        shared = await sharedRead(shard);
        if (shared !== null && shared.events.length > 0 && (await applyTogether(shard, shared.at, shared.events))) {
          failures = 0;
          continue; // applied to all: poll again at once (a full batch means more is waiting)
        }
      } catch (error) {
        // One projection's failure must not hold up the others: step them one by one (each in
        // its own transaction) with what was read.
        if (shared !== null && shared.events.length > 0) {
          if (isOutage(error)) deps.logger?.debug?.({ err: error, shard }, 'projection batch for all projections failed; applying one by one');
          else deps.logger?.warn({ err: error, shard }, 'projection batch for all projections failed; applying one by one');
          const read = Promise.resolve(shared.events);
          for (const p of projections) if (cursors.get(key(p.name, shard)) === shared.at) ahead.set(key(p.name, shard), { after: shared.at, events: read });
        } else {
          await failed(++failures, error, { shard }, 'projection log read failed; retrying', 'warn');
          continue;
        }
      }
      let stepFailed = false;
      for (const p of shared?.events.length === 0 ? [] : projections) {
        try {
          if ((await step(p, shard)) > 0) progressed = true;
        } catch (error) {
          stepFailed = true;
          await failed(++failures, error, { projection: p.name, shard }, 'projection batch failed; retrying', 'error');
        }
      }
      if (!stepFailed) failures = 0;
      if (!progressed && running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, pollIntervalMs);
          function done() {
            clearTimeout(timer);
            wake.delete(shard);
            resolve();
          }
          wake.set(shard, done);
        });
      }
    }
  }

  return {
    ensureSchema,

    /** Creates the schemas and runs every projection over every shard in the background. */
    async start() {
      await ensureSchema();
      running = true;
      unsubscribe = store.onAppended((shard) => wake.get(shard)?.());
      loops = Array.from({ length: store.shardCount }, (_, shard) => loop(shard));
    },

    async stop() {
      running = false;
      unsubscribe?.();
      for (const w of wake.values()) w();
      for (const p of [...pauses]) p();
      await Promise.all(loops);
      loops = [];
      for (const w of waiters) w.resolve(false);
      waiters.clear();
    },

    /**
     * Applies everything committed so far (for tools and tests; no background loop needed).
     * `only` limits it to some projections; `onBatch` hears of each batch read (progress bars).
     */
    async catchUp(options: { only?: readonly string[]; onBatch?: (batch: { projection: string; shard: number; events: number }) => void } = {}) {
      const chosen = options.only === undefined ? projections : projections.filter((p) => options.only!.includes(p.name));
      // Shards are independent logs: catch them up side by side.
      await Promise.all(
        Array.from({ length: store.shardCount }, async (_, shard) => {
          for (const p of chosen) {
            for (;;) {
              const n = await step(p, shard);
              if (n === 0) break;
              options.onBatch?.({ projection: p.name, shard, events: n });
            }
          }
        }),
      );
    },

    /**
     * Resolves true once `projection` has applied the shard's log up to `position` (read-your-
     * writes for the caller that appended it), false after `timeoutMs`.
     */
    async waitFor(projection: string, at: { shard: number; position: number }, timeoutMs: number): Promise<boolean> {
      const k = key(projection, at.shard);
      if ((known.get(k) ?? -1) >= at.position) return true;
      if ((await checkpoint(projection, at.shard)) >= at.position) return true;
      return new Promise<boolean>((resolve) => {
        const waiter = {
          key: k,
          position: at.position,
          resolve: (ok: boolean) => {
            clearTimeout(timer);
            resolve(ok);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          resolve(false);
        }, timeoutMs);
        waiters.add(waiter);
        wake.get(at.shard)?.();
      });
    },

    /** Empties a read model and sets its checkpoints to 0; the loops (or catchUp) replay it from position 0. */
    async reset(name: string) {
      const p = byName.get(name);
      if (!p) throw new Error(`unknown projection ${name}`);
      await db.transaction(async (tx) => {
        await tx.query('SELECT 1 FROM projection_checkpoints WHERE projection = $1 FOR UPDATE', [name]);
        // TRUNCATE, not DELETE: a rebuild then writes into empty tables and indexes, not over a
        // million dead rows (3x faster for the search index). Transactional on PostgreSQL.
        if (p.tables.length > 0) await tx.query(`TRUNCATE ${p.tables.join(', ')}`);
        await tx.query('UPDATE projection_checkpoints SET position = 0, updated_at = now() WHERE projection = $1', [name]);
      });
      for (let shard = 0; shard < store.shardCount; shard++) {
        known.delete(key(name, shard));
        cursors.delete(key(name, shard));
        ahead.delete(key(name, shard));
      }
    },

    async status(): Promise<ProjectionStatus[]> {
      const out: ProjectionStatus[] = [];
      for (const p of projections) {
        for (let shard = 0; shard < store.shardCount; shard++) {
          const [position, head] = await Promise.all([checkpoint(p.name, shard), store.headPosition(shard)]);
          out.push({ projection: p.name, shard, position, head, lag: head - position });
        }
      }
      return out;
    },
  };
}

/**
 * A projector transaction does not wait for its WAL flush. A crash can lose the last few
 * milliseconds of projector commits, but each takes its writes AND its checkpoint with it, so the
 * read model stays exactly at its checkpoint and the events are applied again from the store,
 * which is durable. Saves a flush wait per batch (ARCHITECTURE.md, "Projections").
 */
const ASYNC_COMMIT = 'SET LOCAL synchronous_commit = off';

/** How long the live loop trusts its cursors before it reads the checkpoints again. */
const CURSOR_REFRESH_MS = 1_000;

