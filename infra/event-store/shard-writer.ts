import type { SqlClient, SqlDatabase } from '../../domain/ports/sql.js';
import { planBatch, rebase, type BatchPlan, type KnownEvent, type PreparedAppend } from './append-batch.js';
import { WrongExpectedVersionError, type AppendResult } from '../../domain/ports/event-store.js';

/**
 * Writes one shard's appends.
 *
 * 'group-commit': the queue is cut into batches of up to maxBatch events, each committed in ONE
 * transaction. Up to `pipeline` batches are in flight: while one holds the append lock in the
 * database, the next waits for it and this process settles the callers of the one before, so the
 * database and this process work at the same time instead of taking turns. A batch that shares a
 * stream with a batch in flight asks for the lock only once that one holds it (or is done), so
 * appends to one stream commit in queue order; a batch of other streams is sent at once and
 * queues for the lock in the database, which hands it over without a round trip to this process
 * (the order between streams is whatever the lock gives: positions stay gap-free and in commit
 * order either way).
 * 'one-tx-per-append': every call is its own transaction, up to `concurrency` at a time.
 *
 * Every append transaction:
 *   1. decides the batch in memory, in queue order (planBatch), against the versions the callers
 *      expect (the first call's expectedVersion for each stream) — so two appends to one stream in
 *      one batch behave like two sequential appends, and one call's conflict fails only that call;
 *   2. calls event_store_append (schema.ts), which takes the shard's append lock, checks those
 *      versions and inserts the rows in one statement; if a stream was elsewhere, it returns the
 *      actual versions instead, and the batch is decided again and resent — still under the lock,
 *      so the second try cannot miss;
 *   3. looks up the event ids of the calls that failed, under the lock (a failed call may be the
 *      repeat of an append that already succeeded: it then gets the original result).
 * Ids of calls that succeed are not looked up: the unique index catches a reused id, and the batch
 * is then run again "carefully", looking up every id and version first — a rare path that keeps
 * the common one to a single statement while the lock is held.
 */

export type AppendMode = 'group-commit' | 'one-tx-per-append';

export type WriterHooks = {
  /** Awaited inside the append transaction, after its writes and before COMMIT (test seam). */
  beforeCommit?: (shard: number) => Promise<void>;
};

export type WriterStats = {
  /** Append transactions run (committed or rolled back). */
  transactions: number;
  /** Calls that succeeded (including idempotent repeats). */
  appends: number;
  /** Events written. */
  events: number;
  /** Calls rejected with WrongExpectedVersionError. */
  conflicts: number;
  /** Most calls in one transaction. */
  largestBatch: number;
  /** Group-commit batches decided in a transaction under the append lock (the one-statement path could not write them). */
  underLock: number;
};

type Pending = {
  call: PreparedAppend;
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
};

export type ShardWriterDeps = {
  shard: number;
  db: SqlDatabase;
  mode: AppendMode;
  maxBatch: number;
  /** 'group-commit': transactions in flight (one holds the lock, the others wait for it in turn). */
  pipeline: number;
  concurrency: number;
  hooks: WriterHooks;
  stats: WriterStats;
  /** Called after a commit that wrote events, with the shard's new head position. */
  committed: (shard: number, head: number) => void;
};

/** A queue at least this long is split over the free pipeline slots. */
const SPLIT_MIN_CALLS = 64;
/** Callers settled per macrotask, so the next transaction's replies are not kept waiting. */
const SETTLE_CHUNK = 32;

const READ_VERSIONS = `
select s.stream_id,
       coalesce((select e.version from events e where e.stream_id = s.stream_id order by e.version desc limit 1), 0) as version
  from unnest($1::text[]) as s(stream_id)`;

const READ_IDS = `select event_id::text as event_id, stream_id, version, position from events where event_id = any($1::uuid[])`;

/**
 * Every list travels as one text (pg escapes each element of a JS array with two regular
 * expressions; a join is far cheaper, here and for the server). Stream ids and types cannot contain
 * control characters (prepareAppend), JSON.stringify never emits a raw one, so U+001E separates.
 */
const APPEND = 'select o_base, o_stream, o_version from event_store_append($1, $2, $3, $4, $5, $6, $7, $8)';
const SEPARATOR = '\u001e';
/** Tries of event_store_append as a statement of its own before the batch is run in a transaction under the lock. */
const ONE_STATEMENT_TRIES = 2;
/** Tries of event_store_append in one transaction; from the second on the lock is held, so two suffice. */
const MAX_APPEND_TRIES = 3;

type VersionRow = { stream_id: string; version: number };
type IdRow = { event_id: string; stream_id: string; version: number; position: number | string };
type AppendRow = { o_base: number | string | null; o_stream: string | null; o_version: number | null };

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** event_store_append's parameters for `plan`, decided against `versions`. */
function appendParams(streams: readonly string[], versions: ReadonlyMap<string, number>, plan: BatchPlan): string[] {
  const r = plan.rows;
  return [
    streams.join(SEPARATOR),
    streams.map((stream) => versions.get(stream) ?? 0).join(','),
    r.streamIds.join(SEPARATOR),
    r.versions.join(','),
    r.eventIds.join(','),
    r.types.join(SEPARATOR),
    r.data.join(SEPARATOR),
    r.metadata.join(SEPARATOR),
  ];
}

/** Adds the stored ids of `calls` to knownIds, ignoring rows at positions above `base` (a batch's own); returns how many it found. */
async function lookUpStoredIds(client: SqlClient, calls: readonly PreparedAppend[], knownIds: Map<string, KnownEvent>, base = Number.POSITIVE_INFINITY): Promise<number> {
  const ids = calls.flatMap((call) => call.events.map((event) => event.eventId));
  const { rows } = await client.query<IdRow>(READ_IDS, [ids]);
  let found = 0;
  for (const row of rows) {
    const position = Number(row.position);
    if (position > base) continue;
    knownIds.set(row.event_id, { streamId: row.stream_id, version: row.version, position });
    found += 1;
  }
  return found;
}

/** What a committed batch wrote: its plan, the head before it, and how many events. */
type Written = { plan: BatchPlan; base: number; count: number };

/** Thrown inside an optimistic transaction when an event id turned out to be stored already. */
class KnownIdInBatch extends Error {}

/** Makes a group-commit batch ask for the append lock only once the earlier batches that share a stream with it hold it. */
type LockOrder = { after: Promise<void>; locked: Promise<void>; markLocked: () => void };

const nextMacrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

export class ShardWriter {
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];
  /**
   * Group-commit batches that do not yet hold the append lock, with their streams. A batch that
   * shares a stream with one of them waits until that one holds it, so appends to a stream commit
   * in queue order; a batch of other streams is sent at once and waits for the lock in the
   * database, which hands it over without a round trip to this process.
   */
  private unlocked: { streams: ReadonlySet<string>; locked: Promise<void> }[] = [];

  constructor(private readonly deps: ShardWriterDeps) {}

  append(call: PreparedAppend): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ call, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Start on a later microtask, so that calls made in the same tick join one batch.
        queueMicrotask(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Resolves when everything queued so far has been written or rejected. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    const groupCommit = this.deps.mode === 'group-commit';
    const depth = groupCommit ? this.deps.pipeline : this.deps.concurrency;
    while (this.queue.length > 0 && this.inFlight < depth) {
      let take = 1;
      if (groupCommit) {
        take = this.batchLength();
        // Split what is queued over the free pipeline slots, so that one batch is settled here
        // while another is written (they then keep taking turns).
        if (this.inFlight < depth - 1 && take === this.queue.length && take >= SPLIT_MIN_CALLS) take = Math.ceil(take / (depth - this.inFlight));
      }
      const batch = this.queue.splice(0, take);
      this.inFlight += 1;
      let order: LockOrder | undefined;
      if (groupCommit) order = this.orderFor(batch);
      void this.runBatch(batch, false, order).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
    if (this.inFlight === 0 && this.queue.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  /** Where `batch` stands in the commit order: after the unlocked batches that share a stream with it. */
  private orderFor(batch: readonly Pending[]): LockOrder {
    const streams = new Set(batch.map((p) => p.call.streamId));
    const before: Promise<void>[] = [];
    for (const other of this.unlocked) {
      for (const stream of streams) {
        if (other.streams.has(stream)) {
          before.push(other.locked);
          break;
        }
      }
    }
    let markLocked!: () => void;
    const locked = new Promise<void>((resolve) => (markLocked = resolve));
    const entry = { streams, locked };
    this.unlocked.push(entry);
    void locked.then(() => this.unlocked.splice(this.unlocked.indexOf(entry), 1));
    const after = before.length === 0 ? Promise.resolve() : before.length === 1 ? before[0]! : Promise.all(before).then(() => {});
    return { after, locked, markLocked };
  }

  /** How many queued calls fit in maxBatch events (at least one). */
  private batchLength(): number {
    let events = this.queue[0]!.call.events.length;
    let take = 1;
    while (take < this.queue.length && events + this.queue[take]!.call.events.length <= this.deps.maxBatch) {
      events += this.queue[take]!.call.events.length;
      take += 1;
    }
    return take;
  }

  /** Runs one transaction for `batch` and settles every call; never throws. */
  private async runBatch(batch: Pending[], careful: boolean, order?: LockOrder): Promise<void> {
    const { stats } = this.deps;
    stats.largestBatch = Math.max(stats.largestBatch, batch.length);
    let written: Written;
    try {
      stats.transactions += 1;
      let done: Written | undefined;
      if (!careful && this.deps.hooks.beforeCommit === undefined) {
        done = await this.writeInOneStatement(batch, order);
        order = undefined; // taken its turn; a fallback below is a rare path outside the ordering
      }
      if (done === undefined && this.deps.mode === 'group-commit') stats.underLock += 1;
      written = done ?? (await this.deps.db.transaction((tx) => this.write(tx, batch, careful, order)));
    } catch (error) {
      order?.markLocked(); // never keep the next batch waiting, whatever happened
      // The retries below are rare paths and do not take part in the ordering.
      if (error instanceof KnownIdInBatch) return this.runBatch(batch, true);
      const state = sqlState(error);
      // 22: data exception, 23: integrity violation
      if (batch.length > 1 && state !== undefined && (state.startsWith('22') || state.startsWith('23'))) {
        // Something in one call's data broke the whole batch: isolate it by writing singly.
        for (const pending of batch) await this.runBatch([pending], careful);
        return;
      }
      for (const pending of batch) pending.reject(asError(error));
      return;
    }
    stats.events += written.count;
    if (written.count > 0) this.deps.committed(this.deps.shard, written.base + written.count);
    const outcomes = rebase(written.plan.outcomes, written.base);
    for (let i = 0; i < batch.length; i++) {
      if (i > 0 && i % SETTLE_CHUNK === 0) await nextMacrotask();
      const outcome = outcomes[i]!;
      const pending = batch[i]!;
      if (outcome.ok) {
        stats.appends += 1;
        pending.resolve(outcome.result);
      } else {
        if (outcome.error instanceof WrongExpectedVersionError) stats.conflicts += 1;
        pending.reject(outcome.error);
      }
    }
  }

  /**
   * The common case in one round trip: event_store_append as a statement of its own, so it is
   * its own transaction and the append lock is held only while the database inserts and commits,
   * never while a reply travels to this process and COMMIT travels back. When a stream was not at
   * the version planned against (the statement then writes nothing and returns the actual
   * versions), the batch is decided again against those and sent once more; if they moved again,
   * it returns undefined, having written nothing, and the caller runs the batch in a transaction
   * that decides it under the lock.
   */
  private async writeInOneStatement(pending: Pending[], order?: LockOrder): Promise<Written | undefined> {
    const { db, shard } = this.deps;
    const batch = pending.map((p) => p.call);
    const streams = [...new Set(batch.map((call) => call.streamId))];
    const versions = new Map<string, number>();
    for (let i = batch.length - 1; i >= 0; i--) versions.set(batch[i]!.streamId, batch[i]!.expectedVersion);
    for (let attempt = 1; attempt <= ONE_STATEMENT_TRIES; attempt++) {
      const plan = planBatch(shard, batch, { versions, knownIds: new Map() });
      const params = appendParams(streams, versions, plan);
      if (order !== undefined) await order.after;
      let result: AppendRow[];
      try {
        ({ rows: result } = await db.query<AppendRow>(APPEND, params));
      } catch (error) {
        if (sqlState(error) === '23505') throw new KnownIdInBatch();
        throw error;
      } finally {
        order?.markLocked();
        order = undefined;
      }
      const base = result.find((row) => row.o_base !== null)?.o_base;
      if (base === undefined || base === null) {
        // Some stream was elsewhere (a caller decided on a stale state: another process appended).
        // Decide the batch again against the versions the database returned, so that caller fails
        // alone and the others go through, still in one statement.
        for (const row of result) versions.set(row.o_stream!, row.o_version!);
        continue;
      }
      // A failed call may repeat an append stored earlier. Rows at positions up to `base` were
      // committed before this batch took the lock and cannot change, so reading them after the
      // commit gives what reading them under the lock would have.
      const failed = batch.filter((_, i) => !plan.outcomes[i]!.ok);
      let final = plan;
      if (failed.length > 0) {
        const knownIds = new Map<string, KnownEvent>();
        if ((await lookUpStoredIds(db, failed, knownIds, Number(base))) > 0) final = planBatch(shard, batch, { versions, knownIds });
      }
      return { plan: final, base: Number(base), count: plan.rows.eventIds.length };
    }
    // The versions kept moving (appends of other processes racing this batch): decide it under the lock.
    return undefined;
  }

  private async write(tx: SqlClient, pending: Pending[], careful: boolean, order?: LockOrder): Promise<Written> {
    const batch = pending.map((p) => p.call);
    const streams = [...new Set(batch.map((call) => call.streamId))];
    const versions = new Map<string, number>();
    const knownIds = new Map<string, KnownEvent>();
    /** Adds the stored ids of `calls` to knownIds, ignoring this batch's own rows (positions above `base`). */
    const lookUpIds = (calls: readonly PreparedAppend[], base?: number) => lookUpStoredIds(tx, calls, knownIds, base);
    if (careful) {
      const { rows } = await tx.query<VersionRow>(READ_VERSIONS, [streams]);
      for (const row of rows) versions.set(row.stream_id, row.version);
      await lookUpIds(batch);
    } else {
      for (let i = batch.length - 1; i >= 0; i--) versions.set(batch[i]!.streamId, batch[i]!.expectedVersion);
    }
    if (order !== undefined) await order.after;

    for (let attempt = 1; ; attempt++) {
      const plan = planBatch(this.deps.shard, batch, { versions, knownIds });
      const r = plan.rows;
      let result: AppendRow[];
      try {
        ({ rows: result } = await tx.query<AppendRow>(APPEND, appendParams(streams, versions, plan)));
      } catch (error) {
        if (!careful && sqlState(error) === '23505') throw new KnownIdInBatch();
        throw error;
      } finally {
        order?.markLocked();
      }
      const base = result.find((row) => row.o_base !== null)?.o_base;
      if (base === undefined || base === null) {
        // Some streams were not at the planned versions: decide again against the actual ones.
        if (attempt >= MAX_APPEND_TRIES) throw new Error('event store: stream versions kept changing while holding the append lock');
        for (const row of result) versions.set(row.o_stream!, row.o_version!);
        if (careful) await lookUpIds(batch); // now under the lock: ids stored meanwhile are seen too
        continue;
      }
      // Failed calls may be repeats of appends stored earlier: decide them again knowing their ids.
      // A failed call changes nothing, so this cannot change the outcome of any call that succeeded.
      const failed = careful ? [] : batch.filter((_, i) => !plan.outcomes[i]!.ok);
      const final =
        failed.length > 0 && (await lookUpIds(failed, Number(base))) > 0 ? planBatch(this.deps.shard, batch, { versions, knownIds }) : plan;
      await this.deps.hooks.beforeCommit?.(this.deps.shard);
      return { plan: final, base: Number(base), count: r.eventIds.length };
    }
  }
}
