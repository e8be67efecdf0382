import { describe, expect, it } from 'vitest';
import { fnv1a32, fnv1a32Bytes, shardOf } from './shard.js';

describe('fnv1a32', () => {
  it('matches the published FNV-1a 32-bit test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('hashes the UTF-8 bytes of non-ASCII ids', () => {
    const id = 'conv-Ωμέγα-😀';
    expect(fnv1a32(id)).toBe(fnv1a32Bytes(Buffer.from(id, 'utf8')));
    expect(fnv1a32(id)).not.toBe(fnv1a32('conv-'));
  });
});

describe('shardOf', () => {
  it('is stable and spreads ids over every shard', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const shard = shardOf(`conversation-${i}`, 4);
      expect(shard).toBe(shardOf(`conversation-${i}`, 4));
      counts[shard]! += 1;
    }
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });

  it('rejects a shard count that is not a positive integer', () => {
    expect(() => shardOf('x', 0)).toThrow(RangeError);
    expect(() => shardOf('x', 1.5)).toThrow(RangeError);
  });
});
