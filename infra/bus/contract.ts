import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import type { EventBus } from '../../gateways/ports/bus.js';

/**
 * The feature suite every EventBus adapter must pass (the guarantees in port.ts).
 *
 *   eventBusContract('memory', { create: async () => ({ bus: createMemoryBus({ retry: { initialMs: 20, maxMs: 100 } }) }) });
 *
 * `create` returns a fresh, empty bus (JetStream: its own stream prefix) whose redelivery back-off
 * is short (tens of milliseconds); the suite closes the bus, then calls `dispose` (e.g. to delete
 * the stream).
 */
export type BusUnderTest = { bus: EventBus; dispose?: () => Promise<void> };

export type EventBusContractOptions = {
  create: () => Promise<BusUnderTest>;
};

/** A stored event as the store would hand it to the relay. */
export function storedEvent(at: { shard: number; position: number; stream_id?: string; version?: number; type?: string; data?: unknown }): StoredEvent {
  return {
    event_id: randomUUID(),
    type: at.type ?? 'MessageSent',
    data: at.data ?? { text: `message ${at.shard}/${at.position}` },
    metadata: { user_id: 'u1' },
    stream_id: at.stream_id ?? `conversation-${at.shard}-${at.position % 3}`,
    version: at.version ?? at.position,
    shard: at.shard,
    position: at.position,
    created_at: new Date(0).toISOString(),
  };
}

/** `perShard` events on each of `shards` shards, positions 1..perShard, interleaved across shards. */
export function shardEvents(shards: number, perShard: number): StoredEvent[] {
  const events: StoredEvent[] = [];
  for (let position = 1; position <= perShard; position++) {
    for (let shard = 0; shard < shards; shard++) events.push(storedEvent({ shard, position }));
  }
  return events;
}

export async function eventually(check: () => void | Promise<void>, timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export type Member = {
  /** Every event handed to a handler call that resolved, in order of handling. */
  readonly handled: StoredEvent[];
  /** The batches of those calls. */
  readonly batches: StoredEvent[][];
  /** Every event handed to the handler, including calls that threw. */
  readonly seen: StoredEvent[];
  readonly done: Promise<void>;
  stop(): Promise<void>;
};

/** Runs one member of `group` in the background. `handle` may throw to fail a batch. */
export function startMember(
  bus: EventBus,
  group: string,
  options: { batchSize?: number; handle?: (events: StoredEvent[]) => Promise<void> | void } = {},
): Member {
  const controller = new AbortController();
  const handled: StoredEvent[] = [];
  const batches: StoredEvent[][] = [];
  const seen: StoredEvent[] = [];
  const done = bus.consume(
    group,
    async (events) => {
      seen.push(...events);
      await options.handle?.(events);
      handled.push(...events);
      batches.push([...events]);
    },
    { signal: controller.signal, ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}) },
  );
  done.catch(() => {}); // observed by whoever awaits `done` or `stop()`
  return {
    handled,
    batches,
    seen,
    done,
    async stop() {
      controller.abort();
      await done;
    },
  };
}

const ids = (events: StoredEvent[]) => events.map((e) => e.event_id);
const countBy = (events: StoredEvent[]) => {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.event_id, (counts.get(e.event_id) ?? 0) + 1);
  return counts;
};

/** Resource kinds that a leaked socket, timer or handle would leave behind. */
function openResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

export function eventBusContract(name: string, options: EventBusContractOptions): void {
  const withBus = async (fn: (bus: EventBus) => Promise<void>) => {
    const { bus, dispose } = await options.create();
    try {
      await fn(bus);
    } finally {
      await bus.close();
      await dispose?.();
    }
  };
  const test = (title: string, fn: (bus: EventBus) => Promise<void>) => it(title, () => withBus(fn));

  describe(`EventBus contract: ${name}`, () => {
    test('delivers published events to a group, in log order per shard, in batches of at most batchSize', async (bus) => {
      const events = shardEvents(2, 12);
      await bus.publish(events.slice(0, 10));
      await bus.publish(events.slice(10));
      const member = startMember(bus, 'ordered', { batchSize: 5 });
      await eventually(() => expect(member.handled).toHaveLength(events.length));
      await member.stop();
      expect(new Set(ids(member.handled))).toEqual(new Set(ids(events)));
      for (const shard of [0, 1]) {
        expect(member.handled.filter((e) => e.shard === shard).map((e) => e.position)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      }
      expect(member.batches.every((batch) => batch.length >= 1 && batch.length <= 5)).toBe(true);
      // events arrive whole: every field as published
      expect(member.handled.find((e) => e.event_id === events[3]!.event_id)).toEqual(events[3]);
    });

    test('a re-published event id is delivered once', async (bus) => {
      const events = shardEvents(1, 4);
      await bus.publish(events.slice(0, 3));
      await bus.publish(events.slice(0, 3)); // the relay after a crash between publish and checkpoint
      await bus.publish([events[1]!, events[3]!]);
      const member = startMember(bus, 'dedupe');
      await eventually(() => expect(ids(member.handled)).toContain(events[3]!.event_id));
      await delay(200); // room for a duplicate to show up
      await member.stop();
      expect(ids(member.handled)).toEqual(ids(events));
    });

    test('a group started after publishing receives earlier events, and resumes where it stopped', async (bus) => {
      const first = shardEvents(1, 5);
      await bus.publish(first);
      const early = startMember(bus, 'late');
      await eventually(() => expect(early.handled).toHaveLength(5));
      await early.stop();
      const second = shardEvents(1, 8).slice(5);
      await bus.publish(second); // published while no member of the group runs
      const later = startMember(bus, 'late');
      await eventually(() => expect(later.handled).toHaveLength(3));
      await delay(100);
      await later.stop();
      expect(ids(later.handled)).toEqual(ids(second));
    });

    test('two members of one group split the work, each event handled once', async (bus) => {
      const events = shardEvents(2, 20);
      await bus.publish(events);
      const slow = async () => delay(15);
      const a = startMember(bus, 'split', { batchSize: 4, handle: slow });
      const b = startMember(bus, 'split', { batchSize: 4, handle: slow });
      await eventually(() => expect(a.handled.length + b.handled.length).toBe(events.length));
      await delay(100);
      await Promise.all([a.stop(), b.stop()]);
      const all = [...a.handled, ...b.handled];
      expect(all).toHaveLength(events.length);
      expect(new Set(ids(all))).toEqual(new Set(ids(events)));
      expect(a.handled.length).toBeGreaterThan(0);
      expect(b.handled.length).toBeGreaterThan(0);
      // each member sees its own events in log order per shard
      for (const member of [a, b]) {
        for (const shard of [0, 1]) {
          const positions = member.handled.filter((e) => e.shard === shard).map((e) => e.position);
          expect(positions).toEqual([...positions].sort((x, y) => x - y));
        }
      }
    });

    test("a failing handler's batch is redelivered, and the group goes on", async (bus) => {
      const events = shardEvents(1, 6);
      const poison = events[1]!.event_id;
      let failures = 0;
      const member = startMember(bus, 'retry', {
        batchSize: 2,
        handle: (batch) => {
          if (failures < 2 && batch.some((e) => e.event_id === poison)) {
            failures++;
            throw new Error('handler failed');
          }
        },
      });
      await bus.publish(events.slice(0, 2));
      await delay(50);
      await bus.publish(events.slice(2));
      await eventually(() => expect(new Set(ids(member.handled))).toEqual(new Set(ids(events))));
      await delay(150);
      await member.stop();
      expect(failures).toBe(2);
      const seen = countBy(member.seen);
      expect(seen.get(poison)).toBe(3); // two failed deliveries, then success
      const handled = countBy(member.handled);
      expect([...handled.values()].every((n) => n === 1)).toBe(true);
      expect(handled.size).toBe(events.length);
    });

    test('a redelivered batch that keeps failing does not stop other groups', async (bus) => {
      const events = shardEvents(1, 3);
      await bus.publish(events);
      const broken = startMember(bus, 'broken', {
        handle: () => {
          throw new Error('always fails');
        },
      });
      const healthy = startMember(bus, 'healthy');
      await eventually(() => expect(healthy.handled).toHaveLength(3));
      await eventually(() => expect(broken.seen.length).toBeGreaterThanOrEqual(6)); // retried
      await Promise.all([broken.stop(), healthy.stop()]);
      expect(broken.handled).toHaveLength(0);
    });

    test('two different groups each receive every event', async (bus) => {
      const events = shardEvents(3, 5);
      const delivery = startMember(bus, 'delivery', { batchSize: 3 });
      const push = startMember(bus, 'push', { batchSize: 7 });
      await bus.flush();
      await bus.publish(events);
      await eventually(() => {
        expect(delivery.handled).toHaveLength(events.length);
        expect(push.handled).toHaveLength(events.length);
      });
      await Promise.all([delivery.stop(), push.stop()]);
      expect(new Set(ids(delivery.handled))).toEqual(new Set(ids(events)));
      expect(new Set(ids(push.handled))).toEqual(new Set(ids(events)));
    });

    test('node messages reach the addressed node only, in order, until it unsubscribes', async (bus) => {
      const a: string[] = [];
      const b: string[] = [];
      const text = (payload: Uint8Array) => new TextDecoder().decode(payload);
      const offA = bus.onNodeMessage('node-a', (payload) => a.push(text(payload)));
      const offB = bus.onNodeMessage('node-b', (payload) => b.push(text(payload)));
      await bus.flush();
      const encode = (s: string) => new TextEncoder().encode(s);
      for (let i = 0; i < 20; i++) bus.sendToNode('node-a', encode(`a${i}`));
      bus.sendToNode('node-b', encode('b0'));
      await bus.flush();
      await eventually(() => {
        expect(a).toEqual(Array.from({ length: 20 }, (_, i) => `a${i}`));
        expect(b).toEqual(['b0']);
      });
      offA();
      await bus.flush();
      bus.sendToNode('node-a', encode('after'));
      bus.sendToNode('node-b', encode('b1'));
      await eventually(() => expect(b).toEqual(['b0', 'b1']));
      expect(a).not.toContain('after');
      offB();
      // the payload a handler gets is its own bytes
      const got: Uint8Array[] = [];
      const offC = bus.onNodeMessage('node-c', (payload) => got.push(payload));
      await bus.flush();
      const sent = encode('xyz');
      bus.sendToNode('node-c', sent);
      sent[0] = 0;
      await eventually(() => expect(got.map(text)).toEqual(['xyz']));
      offC();
    });

    test('rejects invalid names and events before doing anything', async (bus) => {
      await expect(bus.consume('bad.group', async () => {})).rejects.toThrow(/consumer group/);
      expect(() => bus.sendToNode('a.b', new Uint8Array())).toThrow(/node id/);
      const valid = storedEvent({ shard: 0, position: 1 });
      await expect(bus.publish([valid, { ...valid, position: 0 }])).rejects.toThrow(/stored event/);
      const member = startMember(bus, 'nothing');
      await delay(150);
      await member.stop();
      expect(member.seen).toHaveLength(0); // the valid event of the refused call was not published either
    });

    it('close() stops running consumers, refuses further use and leaves no socket or timer open', async () => {
      const before = openResources();
      const { bus, dispose } = await options.create();
      try {
        const member = startMember(bus, 'closing', { handle: () => delay(50) });
        bus.onNodeMessage('node-x', () => {});
        await bus.publish(shardEvents(1, 3));
        await eventually(() => expect(member.seen.length).toBeGreaterThan(0));
        await bus.close();
        await member.done; // the consumer resolved by itself
        await bus.close(); // idempotent
        await expect(bus.publish(shardEvents(1, 1))).rejects.toThrow(/closed/);
        await expect(bus.consume('closing', async () => {})).rejects.toThrow(/closed/);
        expect(() => bus.sendToNode('node-x', new Uint8Array([1]))).toThrow(/closed/);
      } finally {
        await bus.close();
        await dispose?.();
      }
      await eventually(() => {
        const after = openResources();
        const leaked = [...after].filter(([kind, n]) => n > (before.get(kind) ?? 0));
        expect(leaked).toEqual([]);
      }, 3_000);
    });
  });
}
