import type { StoredEvent } from '../../domain/ports/event-store.js';

/**
 * The newest stretch of one shard's log that this process has read, so that the readers of the
 * log in one process (the relay and the projector run side by side in a core process) fetch and
 * parse each row once instead of once each: the second reader finds the events in memory.
 *
 * Sound because a shard's log is gap-free in commit order and events never change (port.ts): a
 * contiguous run of positions read once is the log's content there for good. Only runs that start
 * right after the asked position and have no hole are kept. A reader ahead of the stretch starts a
 * new one; a reader behind it (a rebuild from position 0) neither uses nor evicts it.
 *
 * The events are shared between readers, which treat them as read-only (they always have: a
 * StoredEvent is a fact).
 */
export class LogTail {
  private events: StoredEvent[] = [];
  /** Position of events[0]. */
  private first = 1;

  constructor(private readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /** The last position held (first - 1 when empty). */
  private get last(): number {
    return this.first + this.events.length - 1;
  }

  /** Held events with position > after, at most maxCount, ascending; empty when after + 1 is not held. */
  after(after: number, maxCount: number): StoredEvent[] {
    const start = after + 1 - this.first;
    if (start < 0 || start >= this.events.length) return [];
    return this.events.slice(start, start + maxCount);
  }

  /** Takes in what a read of the log after `after` returned (ascending positions). */
  add(after: number, read: readonly StoredEvent[]): void {
    let run = 0;
    while (run < read.length && read[run]!.position === after + 1 + run) run++;
    if (run === 0) return;
    const start = after + 1;
    if (this.events.length > 0 && start >= this.first && start <= this.last + 1) {
      for (let i = this.last + 1 - start; i < run; i++) this.events.push(read[i]!);
    } else if (this.events.length === 0 || start > this.last + 1) {
      this.events = read.slice(0, run);
      this.first = start;
    } else {
      return; // behind the stretch: a reader far back does not evict what the live readers share
    }
    // Trimmed in steps of half the capacity, so the copy is paid once per capacity / 2 events.
    if (this.events.length > this.capacity + (this.capacity >> 1)) {
      const drop = this.events.length - this.capacity;
      this.events = this.events.slice(drop);
      this.first += drop;
    }
  }

  get size(): number {
    return this.events.length;
  }
}
