import { describe, expect, it } from 'vitest';
import type { Presence, PresenceStore, SignalChange } from '../../gateways/ports/presence.js';

/**
 * The feature suite every PresenceStore adapter must pass (see the guarantees in port.ts).
 *
 *   presenceStoreContract('redis', async ({ clock }) => ({ store, peer, dispose }));
 *
 * The factory builds EMPTY state around the given fake clock: `store` and `peer` are two nodes
 * over the same state (two Redis stores on one prefix; for memory, the same instance twice).
 * Every test records on `peer` what `store` publishes, so each one also proves that changes
 * cross nodes. `dispose` closes both and removes what the fixture created.
 */
export type PresenceFixture = { store: PresenceStore; peer: PresenceStore; dispose(): Promise<void> };
export type PresenceStoreFactory = (deps: { clock: () => number; sweepEveryMs?: number }) => Promise<PresenceFixture>;

export type FakeClock = { now: () => number; advance(ms: number): void };

export function createFakeClock(start = Date.parse('2030-01-01T00:00:00.000Z')): FakeClock {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();
const online = (user_id: string): SignalChange => ({ kind: 'presence', presence: { user_id, status: 'online', last_seen: null } });
const away = (user_id: string): SignalChange => ({ kind: 'presence', presence: { user_id, status: 'away', last_seen: null } });
const offline = (user_id: string, lastSeenMs: number): SignalChange => ({
  kind: 'presence',
  presence: { user_id, status: 'offline', last_seen: iso(lastSeenMs) },
});
/** Who each test user's typing is for (the callers resolve it: the other members). */
const TO: Record<string, string[]> = { alice: ['bob', 'carol'], bob: ['alice'], carol: [] };
const to = (user_id: string): string[] => TO[user_id] ?? [];
const typing = (conversation_id: string, user_id: string, is_typing: boolean, recipients = to(user_id)): SignalChange => ({
  kind: 'typing',
  conversation_id,
  user_id,
  is_typing,
  recipients,
});
const presence = (user_id: string, status: Presence['status'], lastSeenMs: number | null = null): Presence => ({
  user_id,
  status,
  last_seen: lastSeenMs === null ? null : iso(lastSeenMs),
});

/** The user whose typing marks a barrier; filtered out of what `settle` returns. */
const BARRIER_USER = '~barrier';

/** Records the changes a store's subscribers get. */
export function recordChanges(store: PresenceStore) {
  let changes: SignalChange[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = store.subscribe((change) => {
    changes.push(change);
    wake?.();
  });
  return {
    unsubscribe,
    /** Waits until the recorded changes satisfy `predicate` (2 s at most). */
    async until(predicate: (changes: SignalChange[]) => boolean, timeoutMs = 2_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(changes)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for changes; got ${JSON.stringify(changes)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 50));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    },
    /** Returns and forgets what was recorded. */
    take(): SignalChange[] {
      const taken = changes;
      changes = [];
      return taken;
    },
  };
}
type Recorder = ReturnType<typeof recordChanges>;

let barriers = 0;
/**
 * Everything published so far, in order, and nothing else: publishes a marker from `via` and
 * waits for it (signals from one node arrive in order), so "nothing was published" is provable.
 */
async function settle(via: PresenceStore, recorders: Recorder[]): Promise<SignalChange[][]> {
  barriers += 1;
  const conversation = `~barrier-${barriers}`;
  expect(await via.typing(BARRIER_USER, conversation, true, [])).toBe(true);
  const isMarker = (change: SignalChange) => change.kind === 'typing' && change.conversation_id === conversation;
  await Promise.all(recorders.map((recorder) => recorder.until((changes) => changes.some(isMarker))));
  return recorders.map((recorder) =>
    recorder.take().filter((change) => !(change.kind === 'typing' && change.user_id === BARRIER_USER)),
  );
}

function activeHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const resource of process.getActiveResourcesInfo()) counts.set(resource, (counts.get(resource) ?? 0) + 1);
  return counts;
}

type Context = {
  store: PresenceStore;
  peer: PresenceStore;
  clock: FakeClock;
  t0: number;
  /** What `peer`'s subscribers got since the last call (store, peer: both are the same state). */
  published(): Promise<SignalChange[]>;
};

export function presenceStoreContract(name: string, factory: PresenceStoreFactory): void {
  const test = (title: string, fn: (context: Context) => Promise<void>) =>
    it(title, async () => {
      const clock = createFakeClock();
      const { store, peer, dispose } = await factory({ clock: clock.now });
      const recorder = recordChanges(peer);
      try {
        const published = async () => (await settle(store, [recorder]))[0] ?? [];
        await fn({ store, peer, clock, t0: clock.now(), published });
      } finally {
        recorder.unsubscribe();
        await dispose();
      }
    });

  describe(`PresenceStore contract: ${name}`, () => {
    describe('presence', () => {
      test('a connection makes the user online: read back and published', async ({ store, published }) => {
        await store.connect('alice', 'c1', 'node-a');
        expect(await store.get(['alice', 'nobody'])).toEqual([presence('alice', 'online'), presence('nobody', 'offline')]);
        expect(await store.get([])).toEqual([]);
        expect(await published()).toEqual([online('alice')]);
      });

      test('stays online while any device is connected; the last one going leaves last_seen = latest heartbeat', async ({ store, clock, t0, published }) => {
        await store.connect('alice', 'phone', 'node-a');
        clock.advance(1_000);
        await store.connect('alice', 'laptop', 'node-b');
        expect(await published()).toEqual([online('alice')]);

        clock.advance(10_000);
        expect(await store.heartbeat('alice', 'phone')).toBe(true); // t0 + 11 s
        clock.advance(10_000);
        expect(await store.heartbeat('alice', 'laptop')).toBe(true); // t0 + 21 s: the latest sign of life
        clock.advance(5_000);
        await store.disconnect('alice', 'laptop');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'online')]);
        expect(await published()).toEqual([]);

        clock.advance(4_000);
        await store.disconnect('alice', 'phone');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'offline', t0 + 21_000)]);
        expect(await published()).toEqual([offline('alice', t0 + 21_000)]);
      });

      test('heartbeats keep a connection alive across sweeps; unknown connections answer false', async ({ store, clock, published }) => {
        await store.connect('alice', 'c1', 'node-a');
        for (let i = 0; i < 4; i += 1) {
          clock.advance(100_000);
          expect(await store.heartbeat('alice', 'c1')).toBe(true);
          await store.sweep();
        }
        expect(await store.get(['alice'])).toEqual([presence('alice', 'online')]);
        expect(await store.heartbeat('alice', 'other')).toBe(false);
        expect(await store.heartbeat('nobody', 'c1')).toBe(false);
        expect(await published()).toEqual([online('alice')]);
      });

      test('no heartbeat for 2 minutes: offline on read at once, published by the next sweep', async ({ store, clock, t0, published }) => {
        await store.connect('alice', 'c1', 'node-a');
        await store.connect('bob', 'c2', 'node-a');
        expect(await published()).toEqual([online('alice'), online('bob')]);
        clock.advance(2 * MIN - 1);
        expect(await store.heartbeat('bob', 'c2')).toBe(true);
        await store.sweep();
        expect(await store.get(['alice'])).toEqual([presence('alice', 'online')]);
        expect(await published()).toEqual([]);

        clock.advance(1);
        expect(await store.get(['alice', 'bob'])).toEqual([presence('alice', 'offline', t0), presence('bob', 'online')]);
        expect(await store.nodesOf(['alice'])).toEqual(new Map([['alice', []]]));
        expect(await published()).toEqual([]);

        await store.sweep();
        expect(await published()).toEqual([offline('alice', t0)]);
        expect(await store.heartbeat('alice', 'c1')).toBe(false);
        await store.sweep();
        expect(await published()).toEqual([]);
        expect(await store.get(['alice'])).toEqual([presence('alice', 'offline', t0)]);
      });

      test('a heartbeat that beats the sweep revives a stale connection, publishing nothing', async ({ store, clock, published }) => {
        await store.connect('alice', 'c1', 'node-a');
        clock.advance(3 * MIN);
        expect((await store.get(['alice']))[0]?.status).toBe('offline');
        expect(await store.heartbeat('alice', 'c1')).toBe(true);
        await store.sweep();
        expect(await store.get(['alice'])).toEqual([presence('alice', 'online')]);
        expect(await published()).toEqual([online('alice')]);
      });

      test('concurrent sweeps on two nodes publish one offline change', async ({ store, peer, clock, t0, published }) => {
        await Promise.all(['a', 'b', 'c'].map((user) => store.connect(user, `${user}-1`, 'node-a')));
        await store.connect('a', 'a-2', 'node-b');
        expect(await published()).toHaveLength(3);
        clock.advance(2 * MIN);
        await Promise.all([store.sweep(), peer.sweep(), store.sweep(), peer.sweep()]);
        const changes = await published();
        expect(changes).toHaveLength(3);
        expect(changes).toEqual(expect.arrayContaining([offline('a', t0), offline('b', t0), offline('c', t0)]));
      });

      test('away holds while online and is dropped when the last connection goes', async ({ store, clock, t0, published }) => {
        await store.connect('alice', 'c1', 'node-a');
        clock.advance(5_000);
        await store.setStatus('alice', 'away');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'away')]);
        await store.setStatus('alice', 'away');
        await store.heartbeat('alice', 'c1');
        expect(await published()).toEqual([online('alice'), away('alice')]);

        await store.setStatus('alice', 'online');
        await store.setStatus('alice', 'away');
        expect(await published()).toEqual([online('alice'), away('alice')]);

        clock.advance(3_000);
        await store.disconnect('alice', 'c1');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'offline', t0 + 5_000)]);
        await store.connect('alice', 'c2', 'node-a');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'online')]);
        expect(await published()).toEqual([offline('alice', t0 + 5_000), online('alice')]);
      });

      test('setStatus without a connection changes nothing', async ({ store, published }) => {
        await store.setStatus('bob', 'away');
        await store.setStatus('bob', 'online');
        expect(await store.get(['bob'])).toEqual([presence('bob', 'offline')]);
        await store.connect('bob', 'c1', 'node-a');
        expect(await store.get(['bob'])).toEqual([presence('bob', 'online')]);
        expect(await published()).toEqual([online('bob')]);
      });

      test('appear offline: shown offline with a frozen last_seen, still routed, until the last connection goes', async ({ store, clock, t0, published }) => {
        await store.connect('alice', 'c1', 'node-a');
        clock.advance(1_000);
        await store.setStatus('alice', 'offline');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'offline', t0 + 1_000)]);
        expect(await store.nodesOf(['alice'])).toEqual(new Map([['alice', ['node-a']]]));
        expect(await published()).toEqual([online('alice'), offline('alice', t0 + 1_000)]);

        clock.advance(30_000);
        expect(await store.heartbeat('alice', 'c1')).toBe(true);
        await store.setStatus('alice', 'offline');
        await store.connect('alice', 'c2', 'node-b');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'offline', t0 + 1_000)]);
        await store.disconnect('alice', 'c1');
        await store.disconnect('alice', 'c2');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'offline', t0 + 1_000)]);
        expect(await published()).toEqual([]);

        clock.advance(10_000);
        await store.connect('alice', 'c3', 'node-a');
        expect(await store.get(['alice'])).toEqual([presence('alice', 'online')]);
        await store.setStatus('alice', 'offline');
        clock.advance(1_000);
        await store.setStatus('alice', 'online');
        expect(await published()).toEqual([online('alice'), offline('alice', t0 + 41_000), online('alice')]);
      });

      test('connect and disconnect are idempotent per connection id', async ({ store, t0, published }) => {
        await store.connect('alice', 'c1', 'node-a');
        await store.connect('alice', 'c1', 'node-a');
        await store.connect('alice', 'c1', 'node-b'); // the same connection, re-registered elsewhere
        expect(await store.nodesOf(['alice'])).toEqual(new Map([['alice', ['node-b']]]));
        await store.disconnect('alice', 'c1');
        await store.disconnect('alice', 'c1');
        await store.disconnect('alice', 'unknown');
        await store.disconnect('nobody', 'c1');
        expect(await store.get(['alice', 'nobody'])).toEqual([presence('alice', 'offline', t0), presence('nobody', 'offline')]);
        expect(await published()).toEqual([online('alice'), offline('alice', t0)]);
      });
    });

    describe('routing', () => {
      test('nodesOf returns the distinct nodes of live connections only', async ({ store, clock }) => {
        await store.connect('alice', 'a1', 'node-b');
        await store.connect('alice', 'a2', 'node-a');
        await store.connect('alice', 'a3', 'node-a');
        await store.connect('bob', 'b1', 'node-b');
        expect(await store.nodesOf(['alice', 'bob', 'carol'])).toEqual(
          new Map([
            ['alice', ['node-a', 'node-b']],
            ['bob', ['node-b']],
            ['carol', []],
          ]),
        );
        clock.advance(MIN);
        await store.heartbeat('alice', 'a2');
        await store.heartbeat('bob', 'b1');
        clock.advance(MIN);
        expect(await store.nodesOf(['alice', 'bob'])).toEqual(
          new Map([
            ['alice', ['node-a']],
            ['bob', ['node-b']],
          ]),
        );
        await store.disconnect('alice', 'a2');
        expect(await store.nodesOf(['alice'])).toEqual(new Map([['alice', []]]));
        expect(await store.nodesOf([])).toEqual(new Map());
      });

      test('nodesOf answers 1,200 users at once, each with their own nodes (adapters may split the lookup)', async ({ store }) => {
        const users = Array.from({ length: 1_200 }, (_, i) => `user-${i}`);
        // every third user is offline; the others sit on node-x or node-y (a sixth on both)
        await Promise.all(
          users.map(async (user, i) => {
            if (i % 3 === 0) return;
            await store.connect(user, `${user}-1`, i % 2 === 0 ? 'node-x' : 'node-y');
            if (i % 6 === 1) await store.connect(user, `${user}-2`, 'node-x');
          }),
        );
        const expected = new Map(users.map((user, i) => [user, i % 3 === 0 ? [] : i % 6 === 1 ? ['node-x', 'node-y'] : [i % 2 === 0 ? 'node-x' : 'node-y']]));

        expect(await store.nodesOf(users)).toEqual(expected);
      });
    });

    describe('typing', () => {
      test('is throttled to one accepted signal per second per user and conversation', async ({ store, clock, published }) => {
        expect(await store.typing('alice', 'conv', true, to('alice'))).toBe(true);
        expect(await published()).toEqual([typing('conv', 'alice', true)]);
        clock.advance(999);
        expect(await store.typing('alice', 'conv', true, to('alice'))).toBe(false);
        expect(await published()).toEqual([]);
        expect(await store.typing('alice', 'other', true, to('alice'))).toBe(true);
        expect(await store.typing('bob', 'conv', true, to('bob'))).toBe(true);
        clock.advance(1);
        expect(await store.typing('alice', 'conv', true, to('alice'))).toBe(true);
        expect(await published()).toEqual([typing('other', 'alice', true), typing('conv', 'bob', true), typing('conv', 'alice', true)]);
      });

      test('expires 3 s after the last accepted signal: read at once, published by sweep', async ({ store, clock, published }) => {
        expect(await store.typing('alice', 'conv', true, to('alice'))).toBe(true);
        clock.advance(1_000);
        expect(await store.typing('alice', 'conv', true, to('alice'))).toBe(true); // refreshes: now ends at +4 s
        clock.advance(2_999);
        await store.sweep();
        expect(await store.typingIn('conv')).toEqual(['alice']);
        expect(await published()).toEqual([typing('conv', 'alice', true), typing('conv', 'alice', true)]);

        clock.advance(1);
        expect(await store.typingIn('conv')).toEqual([]);
        await store.sweep();
        expect(await published()).toEqual([typing('conv', 'alice', false)]);
        await store.sweep();
        expect(await published()).toEqual([]);
      });

      test('typing false clears at once and publishes only when the user was typing', async ({ store, clock, published }) => {
        expect(await store.typing('alice', 'conv', true, to('alice'))).toBe(true);
        expect(await store.typing('alice', 'conv', false, to('alice'))).toBe(true);
        expect(await store.typingIn('conv')).toEqual([]);
        expect(await published()).toEqual([typing('conv', 'alice', true), typing('conv', 'alice', false)]);

        expect(await store.typing('alice', 'conv', false, to('alice'))).toBe(true);
        expect(await store.typing('bob', 'conv', false, to('bob'))).toBe(true);
        expect(await store.typing('alice', 'conv', true, to('alice'))).toBe(false); // a stop does not reset the throttle
        clock.advance(5_000);
        await store.sweep();
        expect(await published()).toEqual([]);
      });

      test('a change names its recipients: a stop those it is given, an expiry those of the start it ends', async ({ store, clock, published }) => {
        expect(await store.typing('alice', 'conv', true, ['bob'])).toBe(true);
        expect(await store.typing('alice', 'conv', false, ['bob', 'dave'])).toBe(true);
        expect(await store.typing('carol', 'conv', true, ['alice', 'bob'])).toBe(true);
        expect(await store.typing('dave', 'conv', true, [])).toBe(true);
        clock.advance(3_000);
        await store.sweep();
        expect(await published()).toEqual([
          typing('conv', 'alice', true, ['bob']),
          typing('conv', 'alice', false, ['bob', 'dave']),
          typing('conv', 'carol', true, ['alice', 'bob']),
          typing('conv', 'dave', true, []),
          typing('conv', 'carol', false, ['alice', 'bob']),
          typing('conv', 'dave', false, []),
        ]);
      });

      test('typingIn lists the current typists of one conversation', async ({ store, clock }) => {
        await store.typing('bob', 'c1', true, to('bob'));
        clock.advance(1_500);
        await store.typing('alice', 'c1', true, to('alice'));
        await store.typing('carol', 'c2', true, to('carol'));
        expect(await store.typingIn('c1')).toEqual(['alice', 'bob']);
        expect(await store.typingIn('c2')).toEqual(['carol']);
        expect(await store.typingIn('c3')).toEqual([]);
        clock.advance(1_500);
        expect(await store.typingIn('c1')).toEqual(['alice']);
      });
    });

    describe('signals', () => {
      test('subscribers on either node see the changes of the other; unsubscribe stops delivery', async ({ store, peer }) => {
        const onStore = recordChanges(store);
        const onPeer = recordChanges(peer);
        const gone = recordChanges(peer);
        gone.unsubscribe();
        await store.connect('alice', 'c1', 'node-a');
        await peer.connect('bob', 'c2', 'node-b');
        await peer.typing('bob', 'conv', true, to('bob'));
        const [fromStore, fromPeer] = await settle(store, [onStore, onPeer]);
        expect(fromStore).toEqual([online('alice'), online('bob'), typing('conv', 'bob', true)]);
        expect(fromPeer).toEqual(fromStore);
        expect(gone.take()).toEqual([]);
        onStore.unsubscribe();
        onPeer.unsubscribe();
      });

      test('a listener that throws does not stop the others', async ({ store, peer }) => {
        const unsubscribe = peer.subscribe(() => {
          throw new Error('listener failure');
        });
        const after = recordChanges(peer);
        await store.connect('alice', 'c1', 'node-a');
        const [changes] = await settle(store, [after]);
        expect(changes).toEqual([online('alice')]);
        unsubscribe();
        after.unsubscribe();
      });
    });

    describe('lifecycle', () => {
      it('sweepEveryMs sweeps on its own; close() stops it, refuses further calls and leaves no handle open', async () => {
        const before = activeHandles();
        const clock = createFakeClock();
        const { store, peer, dispose } = await factory({ clock: clock.now, sweepEveryMs: 20 });
        const recorder = recordChanges(peer);
        await store.connect('alice', 'c1', 'node-a');
        clock.advance(2 * MIN);
        await recorder.until((changes) => changes.some((change) => change.kind === 'presence' && change.presence.status === 'offline'));
        recorder.unsubscribe();
        await dispose();
        await store.close(); // twice is fine
        await expect(store.get(['alice'])).rejects.toThrow(/closed/);
        expect(() => store.subscribe(() => {})).toThrow(/closed/);
        // Sockets finish closing on the next turns of the event loop.
        const deadline = Date.now() + 2_000;
        const leaked = () => [...activeHandles()].filter(([kind, count]) => count > (before.get(kind) ?? 0));
        while (leaked().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(leaked()).toEqual([]);
      });
    });
  });
}
