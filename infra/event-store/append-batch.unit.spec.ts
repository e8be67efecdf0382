import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidAppendError, planBatch, prepareAppend, rebase, type KnownEvent, type PreparedAppend } from './append-batch.js';
import { DuplicateEventIdError, WrongExpectedVersionError } from '../../domain/ports/event-store.js';

const call = (streamId: string, expectedVersion: number, ids: string[] = [randomUUID()]): PreparedAppend =>
  prepareAppend(
    streamId,
    ids.map((event_id) => ({ event_id, type: 'T', data: { n: 1 } })),
    expectedVersion,
  );

describe('prepareAppend', () => {
  it('serialises data and metadata and lower-cases event ids', () => {
    const id = randomUUID().toUpperCase();
    const prepared = prepareAppend('s', [{ event_id: id, type: 'T', data: { a: [1, 'x'] }, metadata: { u: 'v' } }], 3);
    expect(prepared).toEqual({
      streamId: 's',
      expectedVersion: 3,
      events: [{ eventId: id.toLowerCase(), type: 'T', dataJson: '{"a":[1,"x"]}', metadataJson: '{"u":"v"}' }],
    });
    expect(prepareAppend('s', [{ event_id: id, type: 'T', data: undefined }], 0).events[0]).toMatchObject({ dataJson: 'null', metadataJson: '{}' });
  });

  it('rejects what PostgreSQL could not store, so it cannot break a batch', () => {
    const ok = { event_id: randomUUID(), type: 'T', data: {} };
    const bad: [string, unknown[], number][] = [
      ['s', [{ ...ok, data: { text: 'a\u0000b' } }], 0], // jsonb refuses \u0000
      ['s', [{ ...ok, data: { text: 'lone \ud800 surrogate' } }], 0],
      ['s', [{ ...ok, metadata: { 'key\u0000': 1 } }], 0],
      ['s', [{ ...ok, data: { n: 10n } }], 0], // not JSON-serialisable
      ['s', [{ ...ok, metadata: [] }], 0],
      ['s', [{ ...ok, type: '' }], 0],
      ['s', [{ ...ok, type: 'a\u001eb' }], 0],
      ['s\u0001', [ok], 0],
      ['s', [{ ...ok, event_id: 'x' }], 0],
      ['s', [ok], 1.5],
      ['s', [], 0],
    ];
    for (const [stream, events, version] of bad) {
      expect(() => prepareAppend(stream, events as never, version), JSON.stringify(events, (_, v) => (typeof v === 'bigint' ? 'bigint' : v))).toThrow(
        InvalidAppendError,
      );
    }
    // escaped text that merely looks like an escape is fine
    expect(prepareAppend('s', [{ ...ok, data: { text: 'a\\u0000b' } }], 0).events[0]!.dataJson).toBe('{"text":"a\\\\u0000b"}');
    expect(prepareAppend('s', [{ ...ok, data: { emoji: '😀' } }], 0).events[0]!.dataJson).toBe('{"emoji":"😀"}');
  });
});

describe('planBatch', () => {
  const noState = { versions: new Map<string, number>(), knownIds: new Map<string, KnownEvent>() };

  it('decides calls in queue order, as if they ran one after another', () => {
    const [a1, a2, b1] = [call('a', 0), call('a', 1, [randomUUID(), randomUUID()]), call('b', 4)];
    const plan = planBatch(0, [a1, call('a', 0), a2, b1, call('b', 4)], { ...noState, versions: new Map([['b', 4]]) });
    expect(plan.outcomes.map((o) => (o.ok ? o.result : o.error.name))).toEqual([
      { firstVersion: 1, nextExpectedVersion: 1, lastPosition: 1, shard: 0, alreadyAppended: false },
      'WrongExpectedVersionError',
      { firstVersion: 2, nextExpectedVersion: 3, lastPosition: 3, shard: 0, alreadyAppended: false },
      { firstVersion: 5, nextExpectedVersion: 5, lastPosition: 4, shard: 0, alreadyAppended: false },
      'WrongExpectedVersionError',
    ]);
    expect(plan.rows.streamIds).toEqual(['a', 'a', 'a', 'b']);
    expect(plan.rows.versions).toEqual([1, 2, 3, 5]);
    const last = plan.outcomes[4]!;
    expect(last.ok === false && last.error).toBeInstanceOf(WrongExpectedVersionError);
    expect(last.ok === false && last.error).toMatchObject({ expectedVersion: 4, actualVersion: 5 });
  });

  it('answers a repeat with the original result, stored or earlier in the batch', () => {
    const stored = randomUUID();
    const fresh = call('s', 3);
    const knownIds = new Map<string, KnownEvent>([[stored, { streamId: 's', version: 3, position: 40 }]]);
    const plan = planBatch(1, [call('s', 2, [stored]), fresh, { ...fresh, expectedVersion: 0 }], {
      versions: new Map([['s', 3]]),
      knownIds,
    });
    expect(plan.outcomes).toEqual([
      { ok: true, relative: false, result: { firstVersion: 3, nextExpectedVersion: 3, lastPosition: 40, shard: 1, alreadyAppended: true } },
      { ok: true, relative: true, result: { firstVersion: 4, nextExpectedVersion: 4, lastPosition: 1, shard: 1, alreadyAppended: false } },
      { ok: true, relative: true, result: { firstVersion: 4, nextExpectedVersion: 4, lastPosition: 1, shard: 1, alreadyAppended: true } },
    ]);
    expect(plan.rows.eventIds).toEqual([fresh.events[0]!.eventId]);
    expect(rebase(plan.outcomes, 100).map((o) => o.ok && o.result.lastPosition)).toEqual([40, 101, 101]);
    expect(knownIds.size).toBe(1); // the state passed in is not modified
  });

  it('treats any other reuse of a known id as a duplicate', () => {
    const [x, y] = [randomUUID(), randomUUID()];
    const knownIds = new Map<string, KnownEvent>([
      [x, { streamId: 'other', version: 1, position: 1 }],
      [y, { streamId: 's', version: 1, position: 2 }],
    ]);
    const plan = planBatch(0, [call('s', 1, [x]), call('s', 1, [y, randomUUID()]), call('s', 1, [randomUUID(), y])], {
      versions: new Map([['s', 1]]),
      knownIds,
    });
    for (const outcome of plan.outcomes) {
      expect(outcome.ok).toBe(false);
      expect((outcome as { error: Error }).error).toBeInstanceOf(DuplicateEventIdError);
    }
    expect(plan.rows.eventIds).toEqual([]);
  });
});
