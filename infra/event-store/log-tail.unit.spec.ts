import { describe, expect, it } from 'vitest';
import { LogTail } from './log-tail.js';
import type { StoredEvent } from '../../domain/ports/event-store.js';

const at = (position: number): StoredEvent => ({
  event_id: `00000000-0000-7000-8000-${String(position).padStart(12, '0')}`,
  type: 'T',
  data: { position },
  metadata: {},
  stream_id: `s-${position % 3}`,
  version: position,
  shard: 0,
  position,
  created_at: '2026-11-29T00:00:00.000Z',
});
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => at(from + i));
const positions = (events: StoredEvent[]) => events.map((e) => e.position);

describe('LogTail', () => {
  it('gives back what was read after a position, from any position inside it, at most maxCount', () => {
    const tail = new LogTail(100);
    tail.add(10, range(11, 20));
    expect(positions(tail.after(10, 100))).toEqual(positions(range(11, 20)));
    expect(positions(tail.after(14, 3))).toEqual([15, 16, 17]);
    expect(positions(tail.after(19, 100))).toEqual([20]);
    expect(tail.after(20, 100)).toEqual([]); // past the end: the reader must ask the database
    expect(tail.after(9, 100)).toEqual([]); // before the start: likewise
    expect(tail.after(12, 0)).toEqual([]);
  });

  it('keeps only the run that starts right after the asked position and has no hole', () => {
    const tail = new LogTail(100);
    tail.add(10, [at(12), at(13)]); // not after 10: nothing kept
    expect(tail.size).toBe(0);
    tail.add(10, [at(11), at(12), at(14), at(15)]); // a hole after 12
    expect(positions(tail.after(10, 100))).toEqual([11, 12]);
    expect(tail.after(13, 100)).toEqual([]);
  });

  it('grows at its end from reads that continue or overlap it, and starts over from a read ahead of it', () => {
    const tail = new LogTail(100);
    tail.add(0, range(1, 5));
    tail.add(5, range(6, 8)); // continues
    tail.add(3, range(4, 10)); // overlaps: only 9 and 10 are new
    expect(positions(tail.after(0, 100))).toEqual(positions(range(1, 10)));
    tail.add(20, range(21, 22)); // ahead, with positions 11..20 unknown
    expect(tail.after(0, 100)).toEqual([]);
    expect(positions(tail.after(20, 100))).toEqual([21, 22]);
  });

  it('is not evicted by a reader far behind it (a rebuild from 0)', () => {
    const tail = new LogTail(100);
    tail.add(500, range(501, 510));
    tail.add(0, range(1, 50));
    expect(positions(tail.after(500, 100))).toEqual(positions(range(501, 510)));
    expect(tail.after(0, 100)).toEqual([]);
  });

  it('holds at most one and a half times its capacity, dropping the oldest', () => {
    const tail = new LogTail(10);
    for (let p = 0; p < 100; p += 4) tail.add(p, range(p + 1, p + 4));
    expect(tail.size).toBeLessThanOrEqual(15);
    expect(tail.size).toBeGreaterThanOrEqual(10);
    const held = tail.after(100 - tail.size, 100);
    expect(positions(held)).toEqual(positions(range(101 - tail.size, 100)));
  });
});
