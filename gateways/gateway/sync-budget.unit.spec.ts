import { describe, expect, it } from 'vitest';
import { createSyncBudget } from './sync-budget.js';

describe('sync budget', () => {
  it('takes frames while the bucket is not empty, charging every cursor, into debt if need be', () => {
    let now = 0;
    const budget = createSyncBudget({ perSecond: 10, burst: 20 }, () => now);
    expect(budget.take('u', 15)).toEqual({ ok: true });
    expect(budget.take('u', 2_000)).toEqual({ ok: true }); // 5 left: a whole frame is taken, the rest is debt
    // 1,995 in debt: the next frame waits until one cursor's worth is back.
    expect(budget.take('u', 1)).toEqual({ ok: false, retryAfterMs: 199_600 });
    now += 199_599;
    expect(budget.take('u', 1).ok).toBe(false);
    now += 1;
    expect(budget.take('u', 1)).toEqual({ ok: true });
    // Other users have their own bucket.
    expect(budget.take('v', 1)).toEqual({ ok: true });
  });

  it('charges work done afterwards, and refills up to the burst only', () => {
    let now = 0;
    const budget = createSyncBudget({ perSecond: 10, burst: 20 }, () => now);
    budget.charge('u', 25);
    expect(budget.take('u', 1)).toEqual({ ok: false, retryAfterMs: 600 });
    now += 3_600_000;
    expect(budget.take('u', 20)).toEqual({ ok: true });
    expect(budget.take('u', 1)).toEqual({ ok: false, retryAfterMs: 100 });
  });

  it('forgets users whose bucket is full again, and only those', () => {
    let now = 0;
    const budget = createSyncBudget({ perSecond: 10, burst: 20 }, () => now);
    budget.take('a', 5);
    budget.take('b', 20);
    now += 500; // a: 15 + 5 = full; b: 0 + 5
    budget.sweep();
    expect(budget.size()).toBe(1);
    expect(budget.take('b', 1)).toEqual({ ok: true }); // b was kept: 5 left, not a fresh 20
    expect(budget.take('b', 100)).toEqual({ ok: true });
    expect(budget.take('b', 1).ok).toBe(false);
  });
});
