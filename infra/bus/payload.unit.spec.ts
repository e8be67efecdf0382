import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import { decodeEvent, encodeEvent, storedEventProblem, storedEventSchema } from './payload.js';

const valid: StoredEvent = {
  event_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  type: 'MessageSent',
  data: { content: 'hi' },
  metadata: { actor: 'alice' },
  stream_id: 'conversation-dm:alice:bob',
  version: 3,
  shard: 0,
  position: 17,
  created_at: '2026-11-29T08:00:00.000Z',
};

/** Every field set to values of the wrong kind, out of range, or at the edges of what is allowed. */
const variations: unknown[] = [
  '',
  'x',
  0,
  -1,
  1,
  1.5,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  null,
  undefined,
  true,
  {},
  [],
  [1],
  { a: 1 },
  new Date(0),
  10n,
];

describe('storedEventProblem', () => {
  it('accepts what the wire schema accepts and refuses what it refuses, field by field', () => {
    let refused = 0;
    for (const key of Object.keys(valid) as (keyof StoredEvent)[]) {
      for (const value of variations) {
        const event = { ...valid, [key]: value } as StoredEvent;
        const problem = storedEventProblem(event);
        expect({ key, value, ok: problem === undefined }).toEqual({ key, value, ok: storedEventSchema.safeParse(event).success });
        if (problem !== undefined) {
          refused++;
          expect(problem.startsWith(`${key}:`)).toBe(true);
        }
      }
      const without = { ...valid } as Record<string, unknown>;
      delete without[key];
      expect(storedEventProblem(without as StoredEvent) === undefined).toBe(storedEventSchema.safeParse(without).success);
    }
    expect(refused).toBeGreaterThan(60); // the table does exercise the refusals
    expect(storedEventProblem(valid)).toBeUndefined();
    expect(storedEventProblem({ ...valid, extra: 1 } as StoredEvent)).toBeUndefined(); // the schema ignores extra keys too
  });

  it('agrees with decoding: what it accepts comes back whole from the wire form', () => {
    expect(decodeEvent(encodeEvent(valid))).toEqual({ ok: true, event: valid });
  });
});
