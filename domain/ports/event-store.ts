/**
 * The event store port: one append-only stream per conversation, sharded over N databases by
 * hash(stream_id) % N, each shard with its own gap-free global log.
 *
 * Guarantees every adapter gives (the contract suite in contract.ts checks them):
 * - `append` is atomic per call and optimistic: it succeeds only if the stream's version equals
 *   `expectedVersion` (0 = the stream must not exist yet), else throws WrongExpectedVersionError.
 * - Stream versions start at 1 and are contiguous; the version of a MessageSent event is that
 *   message's sequence_number.
 * - Appends are idempotent by event id: appending events whose ids are all already in the stream
 *   returns the original result and writes nothing.
 * - Concurrent appends may be batched into one transaction (group commit); each call still
 *   succeeds or fails on its own.
 * - A shard's log positions grow in commit order: a reader that has seen position P will never
 *   later find a committed event below P (no event is skipped by a checkpointed reader).
 */

export type NewEvent = {
  event_id: string;
  type: string;
  data: unknown;
  metadata?: Record<string, unknown>;
};

export type StoredEvent = {
  event_id: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
  stream_id: string;
  version: number;
  shard: number;
  /** Position in the shard's global log (1-based, gap-free in commit order). */
  position: number;
  created_at: string;
};

export type AppendResult = {
  /** The stream's version after this append (the version of its last event). */
  nextExpectedVersion: number;
  /** Version and log position of the first appended event. */
  firstVersion: number;
  shard: number;
  /** Log position of the last appended event in its shard. */
  lastPosition: number;
  /** True when every event id was already in the stream and nothing was written. */
  alreadyAppended: boolean;
};

export type ReadStreamOptions = {
  /** Forwards: the first version returned (default 1). Backwards: the highest version returned (default: the last). */
  from?: number;
  direction?: 'forwards' | 'backwards';
  maxCount?: number;
  /** Only these event types (the versions returned keep their gaps). */
  types?: string[];
};

export type ReadLogOptions = {
  /** Return events with position > after (0 = from the start). */
  after: number;
  maxCount: number;
};

export interface EventStore {
  readonly shardCount: number;
  shardOf(streamId: string): number;
  append(streamId: string, events: NewEvent[], options: { expectedVersion: number }): Promise<AppendResult>;
  readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  /** The stream's current version (0 when it does not exist). */
  streamVersion(streamId: string): Promise<number>;
  readLog(shard: number, options: ReadLogOptions): Promise<StoredEvent[]>;
  /** The highest committed position of a shard's log (0 when empty). */
  headPosition(shard: number): Promise<number>;
  /** Called after each commit with the shard and its new head position (in-process wake-up). */
  onAppended(listener: (shard: number, position: number) => void): () => void;
  close(): Promise<void>;
}

export class WrongExpectedVersionError extends Error {
  override readonly name = 'WrongExpectedVersionError';
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super(`stream ${streamId}: expected version ${expectedVersion}, actual ${actualVersion}`);
  }
}

/** An event id reused in another stream or at another place: never idempotent, always a bug. */
export class DuplicateEventIdError extends Error {
  override readonly name = 'DuplicateEventIdError';
  constructor(readonly eventId: string) {
    super(`event id ${eventId} is already stored elsewhere`);
  }
}
