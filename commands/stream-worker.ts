import { uuidV7 } from './ids.js';
import { decide } from '../domain/conversation/decide.js';
import { evolve, initialState, undoOf, type ConversationState } from '../domain/conversation/state.js';
import type { ConversationCommand } from '../domain/conversation/commands.js';
import type { ConversationEvent } from '../domain/conversation/events.js';
import { parseConversationEvent } from '../domain/conversation/upcast.js';

import { WrongExpectedVersionError, type AppendResult, type EventStore, type NewEvent } from '../domain/ports/event-store.js';

/**
 * Runs commands against conversation streams: decide (on the cached state; a stream not cached is
 * loaded from the store), append with the expected version, retry on a version conflict (the
 * state caught up from the store).
 *
 * Commands for one stream are serialised in this process and batched: every command queued while
 * an append is in flight is decided, in order, against the state left by the one before, and all
 * their events go out in ONE append. Across processes, optimistic concurrency (expected version)
 * keeps the stream consistent: on a conflict the events folded ahead of the append are taken back
 * (undoOf), the state is caught up from the store and the whole batch decided again. A command
 * that the domain refuses fails alone, once a caught-up state confirms the refusal.
 */

export type CommandOutcome<T> = {
  /** Events this command appended (as decided: typed, not re-read), with their stream versions. */
  events: (ConversationEvent & { version: number })[];
  /** Where the last appended event sits in its shard's log (null when nothing was appended). */
  position: { shard: number; position: number } | null;
  /** What `extract` read from the state right after this command was decided. */
  value: T;
};

type Job = {
  /** null: a read, served in order with the commands of this stream. */
  command: ConversationCommand | null;
  metadata: Record<string, unknown>;
  extract: (state: ConversationState, appended: ConversationEvent[]) => unknown;
  resolve: (outcome: CommandOutcome<unknown>) => void;
  reject: (error: unknown) => void;
};

type StreamSlot = { queue: Job[]; running: boolean };

export type StreamWorkerOptions = {
  store: EventStore;
  /** How many conversation states to keep in memory (least recently used are dropped). */
  cacheSize?: number;
  maxAttempts?: number;
  /** Event id generator (default: time-ordered UUID v7, see ids.ts). */
  newEventId?: () => string;
};

export interface StreamWorker {
  /** Whether this worker holds the stream's state (a command or read on it needs no full read of the stream). */
  holds(streamId: string): boolean;
  /**
   * Decides and appends one command. `extract` runs synchronously right after the command was
   * decided (and its events folded in), so it sees exactly this command's outcome.
   */
  execute<T>(streamId: string, command: ConversationCommand, extract: (state: ConversationState, appended: ConversationEvent[]) => T, metadata?: Record<string, unknown>): Promise<CommandOutcome<T>>;
  /**
   * Reads the stream's current state, in order with this process's commands on the stream
   * (read-your-writes), caught up with what other processes appended. `extract` must copy what
   * it needs: the state object lives on and changes.
   */
  read<T>(streamId: string, extract: (state: ConversationState) => T): Promise<T>;
}

/** Batches of a stream decided on a state read first, after others were seen appending to it. */
const CONTENDED_BATCHES = 16;

export function createStreamWorker(options: StreamWorkerOptions): StreamWorker {
  const { store } = options;
  const cacheSize = options.cacheSize ?? 10_000;
  const maxAttempts = options.maxAttempts ?? 50;
  const newEventId = options.newEventId ?? (() => uuidV7());
  const cache = new Map<string, ConversationState>();
  const slots = new Map<string, StreamSlot>();
  /**
   * Streams another process writes too: their commands are decided on a state read from the store
   * first, for as many more batches as the number says (renewed while those reads keep finding
   * events of others). Trusting the cache there would make every other append a refused one.
   */
  const contended = new Map<string, number>();

  function remember(streamId: string, state: ConversationState) {
    cache.delete(streamId);
    cache.set(streamId, state);
    if (cache.size > cacheSize) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) {
        cache.delete(oldest);
        contended.delete(oldest);
      }
    }
  }

  /** The stream's current state: the cached one caught up with whatever was appended since. */
  async function load(streamId: string): Promise<ConversationState> {
    const cached = cache.get(streamId);
    let state = cached ?? initialState();
    const before = state.version;
    const page = 1000;
    for (;;) {
      const events = await store.readStream(streamId, { from: state.version + 1, maxCount: page });
      for (const stored of events) {
        if (stored.version <= state.version) continue;
        state = evolve(state, parseConversationEvent(stored), stored.version);
      }
      if (events.length < page) break;
    }
    if (cached !== undefined) {
      // Events of others found past a cached state: the stream is written elsewhere too.
      const left = state.version > before ? CONTENDED_BATCHES : (contended.get(streamId) ?? 0) - 1;
      if (left > 0) contended.set(streamId, left);
      else contended.delete(streamId);
    }
    remember(streamId, state);
    return state;
  }

  async function runBatch(streamId: string, jobs: Job[]): Promise<void> {
    // Commands alone are decided on the cached state as it stands, without asking the store first:
    // the append's expected version confirms them (if another process appended meanwhile, the
    // append is refused and the batch is decided again on a caught-up state). What no append
    // confirms (a read, a command the domain refuses, one that changes nothing) is decided again
    // on a caught-up state before it is answered.
    let trustCache = !contended.has(streamId) && jobs.every((job) => job.command !== null);
    for (let attempt = 1; ; attempt++) {
      const cached = trustCache ? cache.get(streamId) : undefined;
      trustCache = false;
      let state = cached ?? (await load(streamId));
      const caughtUp = cached === undefined;
      const expectedVersion = state.version;
      const accepted: { job: Job; events: ConversationEvent[]; value: unknown; firstVersion: number }[] = [];
      const toAppend: NewEvent[] = [];
      // Decided events are folded into the cached state before their append; these take them back.
      const undos: (() => void)[] = [];
      const takeBack = () => {
        for (let i = undos.length - 1; i >= 0; i--) undos[i]!();
      };
      let unconfirmed = false;
      for (const job of jobs) {
        let events: ConversationEvent[];
        try {
          events = job.command === null ? [] : decide(job.command, state);
        } catch (error) {
          if (!caughtUp) {
            unconfirmed = true;
            break;
          }
          job.reject(error);
          continue;
        }
        if (!caughtUp && events.length === 0) {
          unconfirmed = true;
          break;
        }
        const firstVersion = state.version + 1;
        for (const event of events) {
          undos.push(undoOf(state, event));
          state = evolve(state, event);
          toAppend.push({ event_id: newEventId(), type: event.type, data: event.data, metadata: job.metadata });
        }
        accepted.push({ job, events, value: job.extract(state, events), firstVersion });
      }
      if (unconfirmed) {
        takeBack();
        continue;
      }
      if (toAppend.length === 0) {
        for (const a of accepted) a.job.resolve({ events: [], position: null, value: a.value });
        return;
      }
      let result: AppendResult;
      try {
        result = await store.append(streamId, toAppend, { expectedVersion });
      } catch (error) {
        // The cached state must not keep events that were not stored (an incremental read then
        // catches it up, where dropping it would read the whole stream again).
        takeBack();
        if (error instanceof WrongExpectedVersionError) {
          contended.set(streamId, CONTENDED_BATCHES);
          if (attempt < maxAttempts) {
            jobs = accepted.map((a) => a.job);
            continue;
          }
        }
        for (const a of accepted) a.job.reject(error);
        return;
      }
      remember(streamId, state);
      for (const a of accepted) {
        a.job.resolve({
          events: a.events.map((e, i) => ({ ...e, version: a.firstVersion + i })),
          position: a.events.length > 0 ? { shard: result.shard, position: result.lastPosition } : null,
          value: a.value,
        });
      }
      return;
    }
  }

  function enqueue(streamId: string, job: Job) {
    let slot = slots.get(streamId);
    if (!slot) {
      slot = { queue: [], running: false };
      slots.set(streamId, slot);
    }
    slot.queue.push(job);
    if (!slot.running) void drain(streamId, slot);
  }

  async function drain(streamId: string, slot: StreamSlot) {
    slot.running = true;
    try {
      while (slot.queue.length > 0) {
        const jobs = slot.queue.splice(0, slot.queue.length);
        try {
          await runBatch(streamId, jobs);
        } catch (error) {
          // load() failed (store unreachable): every job of the batch fails, none is half done.
          cache.delete(streamId);
          for (const job of jobs) job.reject(error);
        }
      }
    } finally {
      slot.running = false;
      slots.delete(streamId);
    }
  }

  return {
    /** Whether this worker holds the stream's state (a command or read on it needs no full read of the stream). */
    holds(streamId: string): boolean {
      return cache.has(streamId);
    },
    /**
     * Decides and appends one command. `extract` runs synchronously right after the command was
     * decided (and its events folded in), so it sees exactly this command's outcome.
     */
    execute<T>(
      streamId: string,
      command: ConversationCommand,
      extract: (state: ConversationState, appended: ConversationEvent[]) => T,
      metadata: Record<string, unknown> = {},
    ): Promise<CommandOutcome<T>> {
      return new Promise<CommandOutcome<T>>((resolve, reject) => {
        enqueue(streamId, { command, metadata, extract, resolve: resolve as Job['resolve'], reject });
      });
    },
    /**
     * Reads the stream's current state, in order with this process's commands on the stream
     * (read-your-writes), caught up with what other processes appended. `extract` must copy what
     * it needs: the state object lives on and changes.
     */
    read<T>(streamId: string, extract: (state: ConversationState) => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        enqueue(streamId, {
          command: null,
          metadata: {},
          extract: (state) => extract(state),
          resolve: (outcome) => resolve(outcome.value as T),
          reject,
        });
      });
    },
  };
}
