import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DuplicateEventIdError,
  WrongExpectedVersionError,
  type AppendResult,
  type EventStore,
  type NewEvent,
} from '../../domain/ports/event-store.js';

/**
 * The feature suite every EventStore adapter must pass (see the guarantees in port.ts).
 *
 *   eventStoreContract('pglite', { create: ({ shards }) => ..., groupCommit: true });
 *
 * `create` must return an EMPTY store with the requested number of shards (positions start at 1);
 * the suite closes it. Real differences between adapters are explicit capabilities.
 */

/** A store under test; `stats` is required when the adapter claims group commit. */
export type ContractStore = EventStore & { stats?: () => { transactions: number; underLock?: number } };

export type EventStoreContractOptions = {
  create: (options: { shards: number }) => Promise<ContractStore>;
  /** Concurrent appends are batched into shared transactions, decided in queue order. */
  groupCommit: boolean;
};

export function newEvent(type = 'MessageSent', data: unknown = { text: 'hello' }, metadata?: Record<string, unknown>): NewEvent {
  return { event_id: randomUUID(), type, data, ...(metadata !== undefined ? { metadata } : {}) };
}

function transactions(store: ContractStore): number {
  if (store.stats === undefined) throw new Error('a group-commit adapter must expose stats().transactions');
  return store.stats().transactions;
}

/** Resolves to the error the promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

export function eventStoreContract(name: string, options: EventStoreContractOptions): void {
  const withStore = async (shards: number, fn: (store: ContractStore) => Promise<void>) => {
    const store = await options.create({ shards });
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  };
  const test = (title: string, fn: (store: ContractStore) => Promise<void>, shards = 1) =>
    it(title, () => withStore(shards, fn));

  describe(`EventStore contract: ${name}`, () => {
    describe('append and read', () => {
      test('appends to a new stream and reads the events back with every field', async (store) => {
        const events = [
          newEvent('ConversationCreated', { conversation_id: 'c1', members: ['u1', 'u2'] }, { user_id: 'u1', command_id: 'k1' }),
          newEvent('MessageSent', { message_id: 'm1', content: 'héllo 👋 "quoted" \\ back\nslash' }),
        ];
        const result = await store.append('conv-1', events, { expectedVersion: 0 });
        expect(result).toEqual<AppendResult>({
          nextExpectedVersion: 2,
          firstVersion: 1,
          shard: 0,
          lastPosition: 2,
          alreadyAppended: false,
        });
        const read = await store.readStream('conv-1');
        expect(read).toHaveLength(2);
        expect(read[0]).toMatchObject({
          event_id: events[0]!.event_id,
          type: 'ConversationCreated',
          data: { conversation_id: 'c1', members: ['u1', 'u2'] },
          metadata: { user_id: 'u1', command_id: 'k1' },
          stream_id: 'conv-1',
          version: 1,
          shard: 0,
          position: 1,
        });
        expect(read[1]).toMatchObject({ version: 2, position: 2, metadata: {}, data: events[1]!.data });
        for (const event of read) {
          expect(typeof event.created_at).toBe('string');
          expect(Number.isNaN(Date.parse(event.created_at))).toBe(false);
          expect(typeof event.position).toBe('number');
        }
        expect(await store.streamVersion('conv-1')).toBe(2);
        expect(await store.streamVersion('nobody')).toBe(0);
        expect(await store.readStream('nobody')).toEqual([]);
      });

      test('keeps versions contiguous over several appends and reports positions', async (store) => {
        const first = await store.append('s', [newEvent(), newEvent()], { expectedVersion: 0 });
        const other = await store.append('t', [newEvent()], { expectedVersion: 0 });
        const second = await store.append('s', [newEvent(), newEvent(), newEvent()], { expectedVersion: 2 });
        expect(first).toMatchObject({ firstVersion: 1, nextExpectedVersion: 2, lastPosition: 2 });
        expect(other).toMatchObject({ firstVersion: 1, nextExpectedVersion: 1, lastPosition: 3 });
        expect(second).toMatchObject({ firstVersion: 3, nextExpectedVersion: 5, lastPosition: 6 });
        const read = await store.readStream('s');
        expect(read.map((e) => e.version)).toEqual([1, 2, 3, 4, 5]);
        expect(read.map((e) => e.position)).toEqual([1, 2, 4, 5, 6]);
      });

      test('rejects an append at the wrong expected version with the actual version, writing nothing', async (store) => {
        await store.append('s', [newEvent(), newEvent()], { expectedVersion: 0 });
        for (const expectedVersion of [0, 1, 3]) {
          const error = await rejection(store.append('s', [newEvent()], { expectedVersion }));
          expect(error).toBeInstanceOf(WrongExpectedVersionError);
          expect(error).toMatchObject({ streamId: 's', expectedVersion, actualVersion: 2 });
        }
        const missing = await rejection(store.append('new', [newEvent()], { expectedVersion: 4 }));
        expect(missing).toMatchObject({ name: 'WrongExpectedVersionError', actualVersion: 0 });
        expect(await store.streamVersion('s')).toBe(2);
        expect(await store.streamVersion('new')).toBe(0);
        expect(await store.headPosition(0)).toBe(2);
      });

      test('rejects invalid input without writing', async (store) => {
        await expect(store.append('s', [], { expectedVersion: 0 })).rejects.toThrow(/at least one event/);
        await expect(store.append('s', [{ ...newEvent(), event_id: 'not-a-uuid' }], { expectedVersion: 0 })).rejects.toThrow(/UUID/);
        await expect(store.append('s', [newEvent()], { expectedVersion: -1 })).rejects.toThrow(/expectedVersion/);
        await expect(store.append('', [newEvent()], { expectedVersion: 0 })).rejects.toThrow(/stream id/);
        await expect(store.append('s', [newEvent('T', { bad: 'nul\u0000' })], { expectedVersion: 0 })).rejects.toThrow(/NUL/);
        const twice = newEvent();
        await expect(store.append('s', [twice, twice], { expectedVersion: 0 })).rejects.toBeInstanceOf(DuplicateEventIdError);
        expect(await store.headPosition(0)).toBe(0);
      });
    });

    describe('readStream', () => {
      const seed = async (store: ContractStore) => {
        const types = ['A', 'B', 'A', 'C', 'B', 'A'];
        await store.append('s', types.map((type, i) => newEvent(type, { i })), { expectedVersion: 0 });
      };
      const versions = (events: { version: number }[]) => events.map((e) => e.version);

      test('reads forwards from a version with a maximum count', async (store) => {
        await seed(store);
        expect(versions(await store.readStream('s'))).toEqual([1, 2, 3, 4, 5, 6]);
        expect(versions(await store.readStream('s', { from: 3 }))).toEqual([3, 4, 5, 6]);
        expect(versions(await store.readStream('s', { from: 2, maxCount: 2 }))).toEqual([2, 3]);
        expect(versions(await store.readStream('s', { from: 7 }))).toEqual([]);
        expect(versions(await store.readStream('s', { maxCount: 0 }))).toEqual([]);
      });

      test('many reads at once (coalesced into shared statements) each get exactly their own stream, range and data', async (store) => {
        const streams = Array.from({ length: 40 }, (_, s) => `many-${s}`);
        await Promise.all(
          streams.map((id, s) => store.append(id, Array.from({ length: 1 + (s % 7) }, (_, i) => newEvent('A', { s, i })), { expectedVersion: 0 })),
        );
        // 200 reads in one go: every stream, from every version up to one past its end, some limited.
        const asks = streams.flatMap((id, s) =>
          Array.from({ length: 5 }, (_, k) => ({ id, s, from: 1 + ((s + k) % (2 + (s % 7))), maxCount: k % 2 === 0 ? undefined : 1 + (k % 3) })),
        );
        const reads = await Promise.all(asks.map((a) => store.readStream(a.id, { from: a.from, ...(a.maxCount === undefined ? {} : { maxCount: a.maxCount }) })));
        asks.forEach((a, n) => {
          const length = 1 + (a.s % 7);
          const end = a.maxCount === undefined ? length : Math.min(length, a.from + a.maxCount - 1);
          const expected = Array.from({ length: Math.max(0, end - a.from + 1) }, (_, i) => a.from + i);
          expect(reads[n]!.map((e) => [e.stream_id, e.version, e.data])).toEqual(expected.map((v) => [a.id, v, { s: a.s, i: v - 1 }]));
        });
      });

      test('reads backwards from the end or from a version', async (store) => {
        await seed(store);
        expect(versions(await store.readStream('s', { direction: 'backwards' }))).toEqual([6, 5, 4, 3, 2, 1]);
        expect(versions(await store.readStream('s', { direction: 'backwards', maxCount: 2 }))).toEqual([6, 5]);
        expect(versions(await store.readStream('s', { direction: 'backwards', from: 4, maxCount: 3 }))).toEqual([4, 3, 2]);
      });

      test('filters by type, keeping the versions of what it returns', async (store) => {
        await seed(store);
        const read = await store.readStream('s', { types: ['A', 'C'] });
        expect(read.map((e) => [e.version, e.type])).toEqual([[1, 'A'], [3, 'A'], [4, 'C'], [6, 'A']]);
        expect(read.map((e) => e.data)).toEqual([{ i: 0 }, { i: 2 }, { i: 3 }, { i: 5 }]);
        expect(versions(await store.readStream('s', { types: ['B'], direction: 'backwards', maxCount: 1 }))).toEqual([5]);
        expect(versions(await store.readStream('s', { types: [] }))).toEqual([]);
      });
    });

    describe('readLog', () => {
      test('returns events in position order after a checkpoint, and the head', async (store) => {
        expect(await store.headPosition(0)).toBe(0);
        expect(await store.readLog(0, { after: 0, maxCount: 10 })).toEqual([]);
        await store.append('a', [newEvent(), newEvent()], { expectedVersion: 0 });
        await store.append('b', [newEvent()], { expectedVersion: 0 });
        await store.append('a', [newEvent()], { expectedVersion: 2 });
        const log = await store.readLog(0, { after: 0, maxCount: 100 });
        expect(log.map((e) => [e.position, e.stream_id, e.version])).toEqual([
          [1, 'a', 1],
          [2, 'a', 2],
          [3, 'b', 1],
          [4, 'a', 3],
        ]);
        expect((await store.readLog(0, { after: 2, maxCount: 100 })).map((e) => e.position)).toEqual([3, 4]);
        expect((await store.readLog(0, { after: 1, maxCount: 2 })).map((e) => e.position)).toEqual([2, 3]);
        expect(await store.readLog(0, { after: 4, maxCount: 10 })).toEqual([]);
        expect(await store.headPosition(0)).toBe(4);
      });

      test('reads that overlap earlier reads give what the log holds, up to its new head', async (store) => {
        await store.append('a', [newEvent(), newEvent(), newEvent()], { expectedVersion: 0 });
        const first = await store.readLog(0, { after: 0, maxCount: 3 });
        await store.append('b', [newEvent(), newEvent()], { expectedVersion: 0 });
        const overlapping = await store.readLog(0, { after: 1, maxCount: 10 });
        expect(overlapping.map((e) => [e.position, e.stream_id, e.version])).toEqual([
          [2, 'a', 2],
          [3, 'a', 3],
          [4, 'b', 1],
          [5, 'b', 2],
        ]);
        expect(overlapping.slice(0, 2)).toEqual(first.slice(1));
        expect((await store.readLog(0, { after: 0, maxCount: 2 })).map((e) => e.position)).toEqual([1, 2]);
        expect((await store.readLog(0, { after: 3, maxCount: 1 })).map((e) => e.position)).toEqual([4]);
        expect(await store.readLog(0, { after: 5, maxCount: 10 })).toEqual([]);
        expect(await store.readLog(0, { after: 2, maxCount: 0 })).toEqual([]);
      });

      test('calls onAppended listeners after the commit with the new head', async (store) => {
        const seen: [number, number][] = [];
        const unsubscribe = store.onAppended((shard, position) => seen.push([shard, position]));
        await store.append('a', [newEvent(), newEvent()], { expectedVersion: 0 });
        expect(seen).toEqual([[0, 2]]);
        const heads = await store.readLog(0, { after: 0, maxCount: 10 });
        expect(heads).toHaveLength(2); // committed by the time the listener ran
        unsubscribe();
        await store.append('a', [newEvent()], { expectedVersion: 2 });
        expect(seen).toEqual([[0, 2]]);
      });
    });

    describe('idempotency', () => {
      test('a repeated append with the same event ids returns the original result and writes nothing', async (store) => {
        await store.append('s', [newEvent()], { expectedVersion: 0 });
        const events = [newEvent(), newEvent()];
        const original = await store.append('s', events, { expectedVersion: 1 });
        await store.append('other', [newEvent()], { expectedVersion: 0 });
        const head = await store.headPosition(0);

        const again = await store.append('s', events, { expectedVersion: 1 });
        expect(again).toEqual({ ...original, alreadyAppended: true });
        // also when the caller retries with a fresher expected version
        const stale = await store.append('s', events, { expectedVersion: 3 });
        expect(stale).toEqual({ ...original, alreadyAppended: true });

        expect(await store.streamVersion('s')).toBe(3);
        expect(await store.headPosition(0)).toBe(head);
        expect((await store.readStream('s')).map((e) => e.event_id)).toHaveLength(3);
      });

      test('an event id already stored in another stream is a DuplicateEventIdError', async (store) => {
        const event = newEvent();
        await store.append('a', [event], { expectedVersion: 0 });
        const error = await rejection(store.append('b', [event], { expectedVersion: 0 }));
        expect(error).toBeInstanceOf(DuplicateEventIdError);
        expect(error).toMatchObject({ eventId: event.event_id });
        expect(await store.streamVersion('b')).toBe(0);
        expect(await store.headPosition(0)).toBe(1);
      });

      test('reusing only some stored ids, or reordering them, is a DuplicateEventIdError', async (store) => {
        const [e1, e2] = [newEvent(), newEvent()];
        await store.append('s', [e1, e2], { expectedVersion: 0 });
        await expect(store.append('s', [e1, newEvent()], { expectedVersion: 2 })).rejects.toBeInstanceOf(DuplicateEventIdError);
        await expect(store.append('s', [newEvent(), e2], { expectedVersion: 2 })).rejects.toBeInstanceOf(DuplicateEventIdError);
        await expect(store.append('s', [e2, e1], { expectedVersion: 2 })).rejects.toBeInstanceOf(DuplicateEventIdError);
        expect(await store.streamVersion('s')).toBe(2);
        expect(await store.headPosition(0)).toBe(2);
      });

      test('the same append issued twice concurrently is written once', async (store) => {
        const events = [newEvent(), newEvent()];
        const [a, b] = await Promise.all([
          store.append('s', events, { expectedVersion: 0 }),
          store.append('s', events, { expectedVersion: 0 }),
        ]);
        expect([a.alreadyAppended, b.alreadyAppended].sort()).toEqual([false, true]);
        expect({ ...a, alreadyAppended: false }).toEqual({ ...b, alreadyAppended: false });
        expect(await store.headPosition(0)).toBe(2);
      });
    });

    describe('concurrency', () => {
      it('50 concurrent writers to one stream, retrying on conflicts, produce versions 1..50 with no loss', { timeout: 30_000 }, () =>
        withStore(1, async (store) => {
          const written: string[] = [];
          let conflicts = 0;
          const writer = async (i: number) => {
            const event = newEvent('MessageSent', { writer: i });
            for (;;) {
              const expectedVersion = await store.streamVersion('hot');
              try {
                const result = await store.append('hot', [event], { expectedVersion });
                expect(result.firstVersion).toBe(expectedVersion + 1);
                written.push(event.event_id);
                return;
              } catch (error) {
                if (!(error instanceof WrongExpectedVersionError)) throw error;
                conflicts += 1;
              }
            }
          };
          await Promise.all(Array.from({ length: 50 }, (_, i) => writer(i)));
          const read = await store.readStream('hot');
          expect(read.map((e) => e.version)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
          expect(new Set(read.map((e) => e.event_id)).size).toBe(50);
          expect(read.map((e) => e.event_id).sort()).toEqual([...written].sort());
          expect(conflicts).toBeGreaterThan(0);
          expect(await store.headPosition(0)).toBe(50);
        }),
      );

      test('many concurrent appends to many streams each get their own result', async (store) => {
        const before = options.groupCommit ? transactions(store) : 0;
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => store.append(`stream-${i}`, [newEvent('MessageSent', { i })], { expectedVersion: 0 })),
        );
        for (const result of results) expect(result).toMatchObject({ firstVersion: 1, nextExpectedVersion: 1, alreadyAppended: false });
        expect(new Set(results.map((r) => r.lastPosition)).size).toBe(200);
        expect(Math.max(...results.map((r) => r.lastPosition))).toBe(200);
        const log = await store.readLog(0, { after: 0, maxCount: 1000 });
        expect(log.map((e) => e.position)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
        for (const event of log) {
          expect(results[(event.data as { i: number }).i]!.lastPosition).toBe(event.position);
        }
        if (options.groupCommit) {
          // batched: far fewer transactions than appends
          expect(transactions(store) - before).toBeLessThanOrEqual(10);
        }
      });

      test('a failing append does not fail the others appended at the same time', async (store) => {
        await store.append('existing', [newEvent()], { expectedVersion: 0 });
        const reused = newEvent();
        await store.append('owner', [reused], { expectedVersion: 0 });
        const before = options.groupCommit ? transactions(store) : 0;
        const settled = await Promise.allSettled([
          store.append('a', [newEvent()], { expectedVersion: 0 }),
          store.append('existing', [newEvent()], { expectedVersion: 5 }), // conflict
          store.append('b', [newEvent(), newEvent()], { expectedVersion: 0 }),
          store.append('c', [reused], { expectedVersion: 0 }), // id stored in another stream
          store.append('d', [newEvent()], { expectedVersion: 0 }),
        ]);
        expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
        expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedVersionError);
        expect((settled[3] as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateEventIdError);
        expect(await store.headPosition(0)).toBe(6);
        expect((await store.readLog(0, { after: 2, maxCount: 10 })).map((e) => e.stream_id).sort()).toEqual(['a', 'b', 'b', 'd']);
        if (options.groupCommit) expect(transactions(store) - before).toBeLessThanOrEqual(3);
      });

      if (options.groupCommit) {
        test('an append decided on a stale version fails alone, and its batch still commits in one statement', async (store) => {
          await store.append('moved', [newEvent()], { expectedVersion: 0 }); // another process appended
          const before = store.stats?.().underLock ?? 0;
          const settled = await Promise.allSettled([
            store.append('x1', [newEvent()], { expectedVersion: 0 }),
            store.append('moved', [newEvent()], { expectedVersion: 0 }), // decided on a stale state
            store.append('x2', [newEvent(), newEvent()], { expectedVersion: 0 }),
          ]);
          expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
          expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ name: 'WrongExpectedVersionError', actualVersion: 1 });
          expect((await store.readStream('x2')).map((e) => e.version)).toEqual([1, 2]);
          expect(await store.streamVersion('moved')).toBe(1);
          expect((store.stats?.().underLock ?? 0) - before).toBe(0);
        });

        test('appends to one stream batched together behave like sequential appends', async (store) => {
          const [e1, e2] = [newEvent(), newEvent()];
          const settled = await Promise.allSettled([
            store.append('s', [e1], { expectedVersion: 0 }),
            store.append('s', [newEvent()], { expectedVersion: 0 }), // the first one won
            store.append('s', [e2], { expectedVersion: 1 }), // sees the first one
            store.append('s', [e1], { expectedVersion: 0 }), // repeat of the first one
            store.append('s', [e2, newEvent()], { expectedVersion: 2 }), // e2 is already at version 2
          ]);
          expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'rejected']);
          const value = (i: number) => (settled[i] as PromiseFulfilledResult<AppendResult>).value;
          expect(value(0)).toMatchObject({ firstVersion: 1, alreadyAppended: false });
          expect(value(2)).toMatchObject({ firstVersion: 2, alreadyAppended: false });
          expect(value(3)).toEqual({ ...value(0), alreadyAppended: true });
          expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ name: 'WrongExpectedVersionError', actualVersion: 1 });
          expect((settled[4] as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateEventIdError);
          expect((await store.readStream('s')).map((e) => e.event_id)).toEqual([e1.event_id, e2.event_id]);
        });
      }
    });

    describe('sharding', () => {
      test(
        'spreads streams over the shards, each with its own log starting at position 1',
        async (store) => {
          expect(store.shardCount).toBe(2);
          const streams = Array.from({ length: 40 }, (_, i) => `conversation-${i}`);
          const byShard = new Map<number, string[]>([[0, []], [1, []]]);
          for (const stream of streams) byShard.get(store.shardOf(stream))!.push(stream);
          expect(byShard.get(0)!.length).toBeGreaterThan(0);
          expect(byShard.get(1)!.length).toBeGreaterThan(0);

          const results = await Promise.all(streams.map((stream) => store.append(stream, [newEvent(), newEvent()], { expectedVersion: 0 })));
          results.forEach((result, i) => {
            expect(result.shard).toBe(store.shardOf(streams[i]!));
          });

          for (const shard of [0, 1]) {
            const log = await store.readLog(shard, { after: 0, maxCount: 1000 });
            expect(log.map((e) => e.position)).toEqual(Array.from({ length: byShard.get(shard)!.length * 2 }, (_, i) => i + 1));
            expect(new Set(log.map((e) => e.stream_id))).toEqual(new Set(byShard.get(shard)));
            expect(log.every((e) => e.shard === shard)).toBe(true);
            expect(await store.headPosition(shard)).toBe(log.length);
          }
          const stream = streams[0]!;
          const read = await store.readStream(stream);
          expect(read.map((e) => [e.version, e.shard])).toEqual([
            [1, store.shardOf(stream)],
            [2, store.shardOf(stream)],
          ]);
          expect(await store.streamVersion(stream)).toBe(2);
          await expect(store.readLog(2, { after: 0, maxCount: 1 })).rejects.toThrow(RangeError);
        },
        2,
      );
    });

    describe('close', () => {
      test('waits for queued appends, then refuses new calls', async (store) => {
        const pending = store.append('s', [newEvent()], { expectedVersion: 0 });
        const closed = store.close();
        await expect(pending).resolves.toMatchObject({ firstVersion: 1 });
        await closed;
        await expect(store.append('s', [newEvent()], { expectedVersion: 1 })).rejects.toThrow(/closed/);
        await expect(store.readStream('s')).rejects.toThrow(/closed/);
      });
    });
  });
}
