import type { StoredEvent } from '../../domain/ports/event-store.js';
import { silentLogger, type BusLogger } from './logger.js';
import { storedEventProblem } from './payload.js';
import type { ConsumeOptions, EventBus } from '../../gateways/ports/bus.js';
import { anySignal, backoffDelay, resolveRetry, type RetryPolicy } from './retry.js';
import { assertName } from './subjects.js';

/**
 * The in-process bus of the embedded default (one process, no NATS). It mirrors the JetStream
 * adapter's semantics (port.ts) with bounded memory:
 * - the last `retainEvents` published events are kept; a group that falls further behind (or is
 *   created later) skips what was dropped, counted in stats().skipped — the store stays the truth;
 * - the last `dedupeIds` event ids are remembered: a re-published id within that window is dropped;
 * - groups live as long as the bus: a member that stops and a member that starts later continue
 *   from the group's position; a failed batch is redelivered after a capped exponential back-off,
 *   and given up (logged, counted) after `maxDeliver` deliveries.
 * Events are deep-frozen copies: handlers share them and must not mutate them.
 */
export type MemoryBusOptions = {
  /** Events kept for groups that are behind or start later (default 100,000). */
  retainEvents?: number;
  /** Event ids remembered for dedupe (default 100,000). */
  dedupeIds?: number;
  /** Back-off before a failed batch is redelivered (default 200 ms doubling up to 30 s). */
  retry?: RetryPolicy;
  /** Deliveries of one event before it is given up (default 1,000). */
  maxDeliver?: number;
  logger?: BusLogger;
};

export type MemoryBusStats = {
  published: number;
  duplicates: number;
  delivered: number;
  acked: number;
  redelivered: number;
  failedBatches: number;
  /** Events given up after maxDeliver deliveries. */
  dropped: number;
  /** Events a group never saw because retention dropped them first. */
  skipped: number;
};

export type MemoryBus = EventBus & { stats(): MemoryBusStats };

type Entry = { seq: number; event: StoredEvent };
type Pending = { seq: number; event: StoredEvent; deliveries: number; dueAt: number };
type Group = {
  /** Sequence of the next never-delivered event. */
  next: number;
  /** Failed events waiting for their redelivery time, in sequence order. */
  retries: Pending[];
  waiters: Set<() => void>;
  timer: NodeJS.Timeout | undefined;
};

function positiveInt(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

export function createMemoryBus(options: MemoryBusOptions = {}): MemoryBus {
  const retainEvents = positiveInt('retainEvents', options.retainEvents ?? 100_000);
  const dedupeIds = positiveInt('dedupeIds', options.dedupeIds ?? 100_000);
  const maxDeliver = positiveInt('maxDeliver', options.maxDeliver ?? 1_000);
  const retry = resolveRetry(options.retry);
  const logger = options.logger ?? silentLogger;

  const log: Entry[] = [];
  let head = 0; // index in `log` of the oldest retained entry (the array is compacted lazily)
  let nextSeq = 1;
  const seen = new Set<string>();
  const groups = new Map<string, Group>();
  const nodes = new Map<string, Set<(payload: Uint8Array) => void>>();
  const members = new Set<Promise<void>>();
  const closing = new AbortController();
  let closed: Promise<void> | undefined;
  const stats: MemoryBusStats = {
    published: 0,
    duplicates: 0,
    delivered: 0,
    acked: 0,
    redelivered: 0,
    failedBatches: 0,
    dropped: 0,
    skipped: 0,
  };

  const assertOpen = () => {
    if (closed !== undefined) throw new Error('the bus is closed');
  };
  const oldestSeq = () => log[head]?.seq ?? nextSeq;

  function wake(group: Group) {
    for (const waiter of [...group.waiters]) waiter();
  }

  function scheduleRetry(group: Group) {
    if (group.timer !== undefined) clearTimeout(group.timer);
    group.timer = undefined;
    const first = group.retries.reduce((min, p) => Math.min(min, p.dueAt), Infinity);
    if (first === Infinity || closed !== undefined) return;
    group.timer = setTimeout(() => {
      group.timer = undefined;
      wake(group);
    }, Math.max(1, first - Date.now()));
  }

  /** Takes the next batch for a member: due redeliveries first, then events never delivered. */
  function take(group: Group, batchSize: number): Pending[] {
    const now = Date.now();
    const due = group.retries.filter((p) => p.dueAt <= now).slice(0, batchSize);
    if (due.length > 0) {
      group.retries = group.retries.filter((p) => !due.includes(p));
      scheduleRetry(group);
      stats.redelivered += due.length;
      return due.map((p) => ({ ...p, deliveries: p.deliveries + 1 }));
    }
    const oldest = oldestSeq();
    if (group.next < oldest) {
      stats.skipped += oldest - group.next;
      logger.warn({ skipped: oldest - group.next }, 'memory bus: a group fell behind the retained events');
      group.next = oldest;
    }
    const start = head + (group.next - oldest);
    const entries = log.slice(start, start + batchSize);
    group.next += entries.length;
    return entries.map((e) => ({ seq: e.seq, event: e.event, deliveries: 1, dueAt: 0 }));
  }

  function waitForWork(group: Group, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        group.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      group.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async function member(groupName: string, group: Group, handler: (events: StoredEvent[]) => Promise<void>, batchSize: number, signal: AbortSignal) {
    while (!signal.aborted) {
      const batch = take(group, batchSize);
      if (batch.length === 0) {
        // A timer may fire a little before Date.now() reaches the due time: never wait without one.
        if (group.retries.length > 0 && group.timer === undefined) scheduleRetry(group);
        await waitForWork(group, signal);
        continue;
      }
      stats.delivered += batch.length;
      try {
        await handler(batch.map((p) => p.event));
        stats.acked += batch.length;
      } catch (error) {
        stats.failedBatches++;
        const deliveries = Math.max(...batch.map((p) => p.deliveries));
        const delayMs = backoffDelay(deliveries, retry);
        logger.warn({ err: error, group: groupName, events: batch.length, deliveries, delayMs }, 'memory bus: handler failed; redelivering');
        for (const p of batch) {
          if (p.deliveries >= maxDeliver) {
            stats.dropped++;
            logger.error({ group: groupName, event_id: p.event.event_id, deliveries: p.deliveries }, 'memory bus: event given up after maxDeliver');
          } else {
            group.retries.push({ ...p, dueAt: Date.now() + delayMs });
          }
        }
        group.retries.sort((a, b) => a.seq - b.seq);
        scheduleRetry(group);
      }
    }
  }

  const bus: MemoryBus = {
    async publish(events: StoredEvent[]): Promise<void> {
      assertOpen();
      const valid = events.map((event) => {
        const problem = storedEventProblem(event);
        if (problem !== undefined) throw new TypeError(`not a stored event: ${problem}`);
        return event;
      });
      for (const event of valid) {
        if (seen.has(event.event_id)) {
          stats.duplicates++;
          continue;
        }
        seen.add(event.event_id);
        if (seen.size > dedupeIds) seen.delete(seen.values().next().value!);
        log.push({ seq: nextSeq++, event: deepFreeze(structuredClone(event)) });
        stats.published++;
      }
      while (log.length - head > retainEvents) head++;
      if (head > 1024 && head * 2 > log.length) {
        log.splice(0, head);
        head = 0;
      }
      for (const group of groups.values()) wake(group);
    },

    async consume(groupName: string, handler: (events: StoredEvent[]) => Promise<void>, consumeOptions: ConsumeOptions = {}): Promise<void> {
      assertOpen();
      assertName('consumer group', groupName);
      const batchSize = positiveInt('batchSize', consumeOptions.batchSize ?? 100);
      let group = groups.get(groupName);
      if (group === undefined) {
        group = { next: oldestSeq(), retries: [], waiters: new Set(), timer: undefined };
        groups.set(groupName, group);
      }
      const signal = anySignal([consumeOptions.signal, closing.signal]);
      const running = member(groupName, group, handler, batchSize, signal);
      members.add(running);
      try {
        await running;
      } finally {
        members.delete(running);
      }
    },

    sendToNode(nodeId: string, payload: Uint8Array): void {
      assertOpen();
      assertName('node id', nodeId, 128);
      const handlers = nodes.get(nodeId);
      if (handlers === undefined) return; // at-most-once: nobody listens
      for (const handler of handlers) {
        const copy = payload.slice();
        queueMicrotask(() => {
          if (!handlers.has(handler)) return;
          try {
            handler(copy);
          } catch (error) {
            logger.error({ err: error, nodeId }, 'memory bus: node message handler threw');
          }
        });
      }
    },

    onNodeMessage(nodeId: string, handler: (payload: Uint8Array) => void): () => void {
      assertOpen();
      assertName('node id', nodeId, 128);
      let handlers = nodes.get(nodeId);
      if (handlers === undefined) nodes.set(nodeId, (handlers = new Set()));
      const registered = (payload: Uint8Array) => handler(payload);
      handlers.add(registered);
      return () => {
        handlers.delete(registered);
        if (handlers.size === 0 && nodes.get(nodeId) === handlers) nodes.delete(nodeId);
      };
    },

    async flush(): Promise<void> {
      await new Promise<void>((resolve) => setImmediate(resolve));
    },

    // In process: nothing to reconnect, so nothing is ever lost in transit.
    onReconnect: () => () => {},

    stats: () => ({ ...stats }),

    close(): Promise<void> {
      closed ??= (async () => {
        closing.abort();
        await Promise.allSettled([...members]);
        for (const group of groups.values()) {
          if (group.timer !== undefined) clearTimeout(group.timer);
          group.timer = undefined;
        }
        nodes.clear();
      })();
      return closed;
    },
  };
  return bus satisfies EventBus;
}
