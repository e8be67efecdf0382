import { describe, expect, it } from 'vitest';
import { presenceStoreContract } from './contract.js';
import { createMemoryPresenceStore } from './memory.js';

presenceStoreContract('memory', async ({ clock, sweepEveryMs }) => {
  const store = createMemoryPresenceStore({ clock, ...(sweepEveryMs !== undefined ? { sweepEveryMs } : {}) });
  // One process, one node: the "other node" is the same instance.
  return { store, peer: store, dispose: () => store.close() };
});

describe('createMemoryPresenceStore', () => {
  it('rejects invalid options with the name of the option', () => {
    expect(() => createMemoryPresenceStore({ presenceTtlMs: 0 })).toThrow(/presenceTtlMs/);
    expect(() => createMemoryPresenceStore({ typingThrottleMs: 1.5 })).toThrow(/typingThrottleMs/);
  });

  it('honours custom TTLs', async () => {
    let now = 0;
    const store = createMemoryPresenceStore({ clock: () => now, presenceTtlMs: 1_000, typingTtlMs: 100, typingThrottleMs: 10 });
    await store.connect('alice', 'c1', 'node-a');
    await store.typing('alice', 'conv', true, ['bob']);
    now = 10;
    expect(await store.typing('alice', 'conv', true, ['bob'])).toBe(true);
    now = 110;
    expect(await store.typingIn('conv')).toEqual([]);
    now = 999;
    expect((await store.get(['alice']))[0]?.status).toBe('online');
    now = 1_000;
    expect((await store.get(['alice']))[0]?.status).toBe('offline');
    await store.close();
  });
});
