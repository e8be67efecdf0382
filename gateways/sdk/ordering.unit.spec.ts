import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';
import { ConversationCursors } from './ordering.js';

describe('ConversationCursors (gap detection rule of PROTOCOL.md)', () => {
  it('applies in-order events, drops duplicates, reports gaps without moving the cursor', () => {
    const c = new ConversationCursors([['c1', 3]]);
    expect(c.onEvent('c1', 3, 2)).toBe('duplicate');
    expect(c.onEvent('c1', 4, 3)).toBe('apply');
    // a receipt not sent to us leaves a hole: previous_version still points at what we have
    expect(c.onEvent('c1', 6, 4)).toBe('apply');
    expect(c.onEvent('c1', 9, 8)).toBe('gap');
    expect(c.get('c1')).toBe(6);
    c.onSyncDone('c1', 9);
    expect(c.get('c1')).toBe(9);
    expect(c.onEvent('c1', 9, 8)).toBe('duplicate');
  });

  it('takes the first event of an unknown conversation as the baseline', () => {
    const c = new ConversationCursors();
    expect(c.onEvent('c2', 40, 39)).toBe('apply');
    expect(c.get('c2')).toBe(40);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially with jitter and is capped', () => {
    const o = { minMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, o, () => 0)).toBe(50);
    expect(backoffDelay(0, o, () => 1)).toBe(100);
    expect(backoffDelay(2, o, () => 1)).toBe(400);
    expect(backoffDelay(10, o, () => 1)).toBe(1000);
    expect(backoffDelay(10, o, () => 0)).toBe(500);
  });
});
