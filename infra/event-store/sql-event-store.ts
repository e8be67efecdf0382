import type { Row, SqlDatabase } from '../../domain/ports/sql.js';
import { prepareAppend } from './append-batch.js';
import type { AppendResult, EventStore, NewEvent, ReadLogOptions, ReadStreamOptions, StoredEvent } from '../../domain/ports/event-store.js';
import { APPENDED_CHANNEL, ensureEventStoreSchema } from './schema.js';
import { LogTail } from './log-tail.js';
import { shardOf } from './shard.js';
import { StreamReader } from './stream-reader.js';
import { ShardWriter, type AppendMode, type WriterHooks, type WriterStats } from './shard-writer.js';
import { MAX_VERSION } from '../../domain/fields.js';

export type { AppendMode, WriterHooks } from './shard-writer.js';
export type EventStoreStats = WriterStats;

export type SqlEventStoreOptions = {
  /** One database per shard; the order defines the shard numbers. */
  shards: SqlDatabase[];
  /** Close the databases in close() (false when they are shared, e.g. with read models). */
  ownsDatabases: boolean;
  /** Default 'group-commit'. */
  mode?: AppendMode;
  /** Most events in one group-commit transaction (default 1000; a larger single call goes alone). */
  maxBatch?: number;
  /**
   * 'group-commit': batches in flight per shard. Default 2 on PostgreSQL: while one batch is
   * written, this process settles the callers of the one before. Default 1 on PGlite, which runs
   * in this process's thread, so there is nothing to overlap.
   */
  pipeline?: number;
  /** 'one-tx-per-append': concurrent append transactions per shard (default 10). */
  concurrency?: number;
  /**
   * Forward stream reads in flight per shard (default 4 on PostgreSQL, 1 on PGlite); reads asked
   * for meanwhile go out together as one statement (stream-reader.ts).
   */
  readConcurrency?: number;
  /**
   * Newest events of each shard's log kept in memory for the process's other log readers
   * (log-tail.ts; default 4096 per shard).
   */
  logTailSize?: number;
  /** Create or update the schema (the events table and its append function) first (default true; appends need it). */
  migrate?: boolean;
  hooks?: WriterHooks;
  /** Receives what an onAppended listener throws (listeners are isolated from each other and from appends). */
  onListenerError?: (error: unknown) => void;
};

export interface SqlEventStore extends EventStore {
  readonly mode: AppendMode;
  /** Counters summed over every shard since creation. */
  stats(): EventStoreStats;
}

type EventRow = {
  stream_id: string;
  version: number;
  position: number | string;
  event_id: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown> | null;
  /** Unix milliseconds (a float8: cheaper to parse than a timestamptz, and the ISO text keeps milliseconds only). */
  created_ms: number;
} & Row;

const createdMs = (column: string) => `floor(extract(epoch from ${column}) * 1000)::float8 as created_ms`;
const COLUMNS = `stream_id, version, position, event_id::text as event_id, type, data, metadata, ${createdMs('created_at')}`;
/** The same columns, of `events e` (stream-reader.ts). */
const E_COLUMNS = `e.stream_id, e.version, e.position, e.event_id::text as event_id, e.type, e.data, e.metadata, ${createdMs('e.created_at')}`;

function toStored(row: EventRow, shard: number): StoredEvent {
  return {
    event_id: row.event_id,
    type: row.type,
    data: row.data,
    metadata: row.metadata ?? {},
    stream_id: row.stream_id,
    version: row.version,
    shard,
    position: Number(row.position),
    created_at: new Date(row.created_ms).toISOString(),
  };
}

function checkCount(value: number | undefined, what: string): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new RangeError(`${what} must be a non-negative integer, got ${String(value)}`);
  }
}

/**
 * The event store over SQL databases, one per shard — the single implementation behind the
 * PostgreSQL and PGlite adapters. See port.ts for the guarantees and shard-writer.ts for how
 * appends are written.
 */
export async function createSqlEventStore(options: SqlEventStoreOptions): Promise<SqlEventStore> {
  const { shards, ownsDatabases } = options;
  if (shards.length === 0) throw new RangeError('an event store needs at least one shard database');
  const mode = options.mode ?? 'group-commit';
  const maxBatch = options.maxBatch ?? 1000;
  const concurrency = options.concurrency ?? 10;
  const logTailSize = options.logTailSize ?? 4096;
  const pipeline = options.pipeline ?? (shards.every((db) => db.kind === 'pglite') ? 1 : 2);
  const readConcurrency = options.readConcurrency ?? (shards.every((db) => db.kind === 'pglite') ? 1 : 4);
  if (!Number.isSafeInteger(readConcurrency) || readConcurrency < 1) throw new RangeError(`readConcurrency must be a positive integer, got ${readConcurrency}`);
  if (mode !== 'group-commit' && mode !== 'one-tx-per-append') throw new RangeError(`unknown append mode ${String(mode)}`);
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  if (!Number.isSafeInteger(pipeline) || pipeline < 1) throw new RangeError(`pipeline must be a positive integer, got ${pipeline}`);

  if (options.migrate ?? true) {
    try {
      for (const db of shards) await ensureEventStoreSchema(db);
    } catch (error) {
      if (ownsDatabases) await Promise.allSettled(shards.map((db) => db.close()));
      throw error;
    }
  }

  const stats: WriterStats = { transactions: 0, appends: 0, events: 0, conflicts: 0, largestBatch: 0, underLock: 0 };
  const listeners = new Set<(shard: number, position: number) => void>();
  /** Highest head announced per shard: an append is announced once, whichever way is first. */
  const announced = shards.map(() => 0);
  const tell = (shard: number, head: number) => {
    for (const listener of [...listeners]) {
      try {
        listener(shard, head);
      } catch (error) {
        options.onListenerError?.(error);
      }
    }
  };
  const committed = (shard: number, head: number) => {
    if (head <= announced[shard]!) return;
    announced[shard] = head;
    tell(shard, head);
  };
  const writers = shards.map(
    (db, shard) =>
      new ShardWriter({ shard, db, mode, maxBatch, pipeline, concurrency, hooks: options.hooks ?? {}, stats, committed }),
  );
  const readers = shards.map((db) => new StreamReader<EventRow>(db, E_COLUMNS, readConcurrency, 500));
  const tails = shards.map(() => new LogTail(logTailSize));
  let closing: Promise<void> | undefined;
  /**
   * Appends of other processes, announced by the append function's NOTIFY (schema.ts), listened
   * for from the first onAppended listener on (PostgreSQL only; PGlite has no other process).
   * After a (re)connection the head is unknown, so listeners are woken to look for themselves.
   */
  let stopListening: (() => Promise<void>)[] | null = null;
  const listenToOthers = () => {
    if (stopListening !== null || closing !== undefined) return;
    stopListening = shards.flatMap((db, shard) =>
      db.listen === undefined
        ? []
        : [
            db.listen(
              APPENDED_CHANNEL,
              (payload) => {
                const head = payload === null ? Number.NaN : Number(payload);
                if (Number.isSafeInteger(head)) committed(shard, head);
                else tell(shard, Number.MAX_SAFE_INTEGER); // head unknown: every listener looks
              },
              (error) => options.onListenerError?.(error),
            ),
          ],
    );
  };

  const shardOfStream = (streamId: string) => shardOf(streamId, shards.length);
  const database = (shard: number): SqlDatabase => {
    const db = Number.isInteger(shard) ? shards[shard] : undefined;
    if (db === undefined) throw new RangeError(`shard ${shard} does not exist (0..${shards.length - 1})`);
    return db;
  };
  const assertOpen = () => {
    if (closing !== undefined) throw new Error('the event store is closed');
  };

  const store: SqlEventStore = {
    shardCount: shards.length,
    mode,
    shardOf: shardOfStream,

    async append(streamId: string, events: NewEvent[], appendOptions: { expectedVersion: number }): Promise<AppendResult> {
      assertOpen();
      const call = prepareAppend(streamId, events, appendOptions?.expectedVersion);
      return writers[shardOfStream(streamId)]!.append(call);
    },

    async readStream(streamId: string, readOptions: ReadStreamOptions = {}): Promise<StoredEvent[]> {
      assertOpen();
      const { direction = 'forwards', maxCount, types } = readOptions;
      checkCount(readOptions.from, 'from');
      checkCount(maxCount, 'maxCount');
      const backwards = direction === 'backwards';
      if (!backwards && direction !== 'forwards') throw new RangeError(`unknown direction ${String(direction)}`);
      const from = Math.min(readOptions.from ?? (backwards ? MAX_VERSION : 1), MAX_VERSION);
      const shard = shardOfStream(streamId);
      if (!backwards && types === undefined) {
        // The common read (load a stream's new events): coalesced with the shard's other reads.
        const rows = await readers[shard]!.read({ streamId, from, maxCount: maxCount ?? null });
        return rows.map((row) => toStored(row, shard));
      }
      const { rows } = await database(shard).query<EventRow>(
        `select ${COLUMNS} from events
          where stream_id = $1 and version ${backwards ? '<=' : '>='} $2
            and ($3::text[] is null or type = any($3::text[]))
          order by version ${backwards ? 'desc' : 'asc'} limit $4`,
        [streamId, from, types ?? null, maxCount ?? null],
      );
      return rows.map((row) => toStored(row, shard));
    },

    async streamVersion(streamId: string): Promise<number> {
      assertOpen();
      const { rows } = await database(shardOfStream(streamId)).query<{ version: number }>(
        'select version from events where stream_id = $1 order by version desc limit 1',
        [streamId],
      );
      return rows[0]?.version ?? 0;
    },

    async readLog(shard: number, logOptions: ReadLogOptions): Promise<StoredEvent[]> {
      assertOpen();
      checkCount(logOptions.after, 'after');
      checkCount(logOptions.maxCount, 'maxCount');
      const db = database(shard);
      // What another reader of this process read already comes from memory (log-tail.ts); the
      // database is asked only for the rest, so the answer is the same as without the tail.
      const tail = tails[shard]!;
      const held = tail.after(logOptions.after, logOptions.maxCount);
      if (held.length === logOptions.maxCount) return held;
      const after = logOptions.after + held.length;
      const { rows } = await db.query<EventRow>(`select ${COLUMNS} from events where position > $1 order by position limit $2`, [
        after,
        logOptions.maxCount - held.length,
      ]);
      const read = rows.map((row) => toStored(row, shard));
      tail.add(after, read);
      return held.length === 0 ? read : held.concat(read);
    },

    async headPosition(shard: number): Promise<number> {
      assertOpen();
      const { rows } = await database(shard).query<{ head: number | string }>(
        'select coalesce(max(position), 0) as head from events',
      );
      return Number(rows[0]?.head ?? 0);
    },

    onAppended(listener: (shard: number, position: number) => void): () => void {
      listeners.add(listener);
      listenToOthers();
      return () => {
        listeners.delete(listener);
      };
    },

    stats: () => ({ ...stats }),

    close(): Promise<void> {
      closing ??= (async () => {
        await Promise.all(writers.map((writer) => writer.idle()));
        listeners.clear();
        await Promise.all((stopListening ?? []).map((stop) => stop()));
        if (ownsDatabases) await Promise.all(shards.map((db) => db.close()));
      })();
      return closing;
    },
  };
  return store;
}
