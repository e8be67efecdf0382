import { describe, expect, it } from 'vitest';
import { delay, eventually, eventBusContract, shardEvents, startMember } from './contract.js';
import { createMemoryBus } from './memory.js';

eventBusContract('memory', {
  create: async () => ({ bus: createMemoryBus({ retry: { initialMs: 20, maxMs: 100 } }) }),
});

describe('memory bus bounds', () => {
  it('keeps only the last retainEvents events: a group created later starts there and counts what it missed', async () => {
    const bus = createMemoryBus({ retainEvents: 3 });
    try {
      const events = shardEvents(1, 5);
      await bus.publish(events);
      const member = startMember(bus, 'late');
      await eventually(() => expect(member.handled).toHaveLength(3));
      await member.stop();
      expect(member.handled.map((e) => e.position)).toEqual([3, 4, 5]);
      expect(bus.stats()).toMatchObject({ published: 5, skipped: 0 });

      // a group that falls behind the retention skips what was dropped (the store fills gaps)
      await bus.publish(shardEvents(1, 10).slice(5)); // positions 6..10, only 8..10 retained
      const again = startMember(bus, 'late');
      await eventually(() => expect(again.handled).toHaveLength(3));
      await again.stop();
      expect(again.handled.map((e) => e.position)).toEqual([8, 9, 10]);
      expect(bus.stats().skipped).toBe(2);
    } finally {
      await bus.close();
    }
  });

  it('remembers the last dedupeIds event ids only', async () => {
    const bus = createMemoryBus({ dedupeIds: 2 });
    try {
      const [e1, e2, e3] = shardEvents(1, 3);
      await bus.publish([e1!, e2!, e3!]);
      await bus.publish([e3!, e1!]); // e3 remembered, e1 forgotten
      expect(bus.stats()).toMatchObject({ published: 4, duplicates: 1 });
    } finally {
      await bus.close();
    }
  });

  it('gives an event up after maxDeliver deliveries and goes on', async () => {
    const bus = createMemoryBus({ maxDeliver: 3, retry: { initialMs: 5, maxMs: 10 } });
    try {
      const events = shardEvents(1, 3);
      const poison = events[0]!.event_id;
      const member = startMember(bus, 'g', {
        batchSize: 1,
        handle: (batch) => {
          if (batch[0]!.event_id === poison) throw new Error('never works');
        },
      });
      await bus.publish(events);
      await eventually(() => expect(bus.stats().dropped).toBe(1));
      await delay(50);
      await member.stop();
      expect(member.seen.filter((e) => e.event_id === poison)).toHaveLength(3);
      expect(member.handled.map((e) => e.position)).toEqual([2, 3]);
    } finally {
      await bus.close();
    }
  });

  it('hands out frozen copies: a handler cannot change what other groups receive', async () => {
    const bus = createMemoryBus();
    try {
      const [event] = shardEvents(1, 1);
      await bus.publish([event!]);
      (event!.data as { text: string }).text = 'changed by the publisher afterwards';
      const member = startMember(bus, 'g', {
        handle: (batch) => {
          expect(() => {
            (batch[0]!.data as { text: string }).text = 'mutated';
          }).toThrow(TypeError);
        },
      });
      await eventually(() => expect(member.handled).toHaveLength(1));
      await member.stop();
      expect(member.handled[0]!.data).toEqual({ text: 'message 0/1' });
    } finally {
      await bus.close();
    }
  });
});
