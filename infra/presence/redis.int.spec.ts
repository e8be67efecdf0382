import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock, presenceStoreContract, recordChanges } from './contract.js';
import { createRedisPresenceStore, decodeSignal } from './redis.js';

// The machine's Redis is shared with other runs: every store gets its own random key prefix, and
// its keys are removed afterwards (never FLUSHALL).
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let admin: Redis;
beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true });
  await admin.connect();
});
afterAll(async () => {
  await quit(admin);
});

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  const ended = once(client, 'end');
  await client.quit();
  await ended;
}

const newPrefix = () => `test:presence:${randomUUID()}:`;

async function keysOf(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

async function removeKeys(prefix: string): Promise<void> {
  const keys = await keysOf(prefix);
  if (keys.length > 0) await admin.del(...keys);
}

presenceStoreContract('redis', async ({ clock, sweepEveryMs }) => {
  const keyPrefix = newPrefix();
  // Node A opens its own connections from a URL; node B is given a client it owns.
  const store = await createRedisPresenceStore({ url: REDIS_URL, keyPrefix, clock, nodeId: 'node-a', ...(sweepEveryMs !== undefined ? { sweepEveryMs } : {}) });
  const client = new Redis(REDIS_URL, { lazyConnect: true });
  await client.connect();
  const peer = await createRedisPresenceStore({ redis: client, keyPrefix, clock, nodeId: 'node-b' });
  return {
    store,
    peer,
    async dispose() {
      await store.close();
      await peer.close();
      await quit(client);
      await removeKeys(keyPrefix);
    },
  };
});

describe('createRedisPresenceStore', () => {
  it('ignores and counts malformed signals on its channel', async () => {
    const keyPrefix = newPrefix();
    const store = await createRedisPresenceStore({ url: REDIS_URL, keyPrefix });
    const recorder = recordChanges(store);
    try {
      const channel = `${keyPrefix}signals`;
      const bad = [
        'not json',
        '{"v":1,"kind":"presence","user_id":"x"}',
        '{"v":2,"kind":"typing","conversation_id":"c","user_id":"u","is_typing":true,"origin":"n"}',
        '{"v":1,"kind":"typing","conversation_id":"c","user_id":"u","is_typing":"yes","origin":"n"}',
        '{"v":1,"kind":"presence","user_id":"x","status":"busy","origin":"n"}',
        '{"v":1,"kind":"typing","conversation_id":"c","user_id":"u","is_typing":true,"origin":"n"}',
        '{"v":1,"kind":"typing","conversation_id":"c","user_id":"u","is_typing":true,"recipients":{},"origin":"n"}',
        '[]',
      ];
      for (const message of bad) await admin.publish(channel, message);
      await admin.publish(channel, '{"v":1,"kind":"typing","conversation_id":"c","user_id":"u","is_typing":true,"recipients":["w"],"origin":"n"}');
      await recorder.until((changes) => changes.length > 0);
      expect(recorder.take()).toEqual([{ kind: 'typing', conversation_id: 'c', user_id: 'u', is_typing: true, recipients: ['w'] }]);
      expect(store.stats()).toEqual({ signalsReceived: bad.length + 1, signalsRejected: bad.length });
    } finally {
      recorder.unsubscribe();
      await store.close();
      await removeKeys(keyPrefix);
    }
  });

  it('decodes last_seen only for offline presence', () => {
    const ms = Date.parse('2030-01-01T00:00:00.000Z');
    expect(decodeSignal(JSON.stringify({ v: 1, kind: 'presence', user_id: 'u', status: 'offline', last_seen_ms: ms, origin: 'n' }))).toEqual({
      kind: 'presence',
      presence: { user_id: 'u', status: 'offline', last_seen: '2030-01-01T00:00:00.000Z' },
    });
    expect(decodeSignal(JSON.stringify({ v: 1, kind: 'presence', user_id: 'u', status: 'away', last_seen_ms: ms, origin: 'n' }))).toEqual({
      kind: 'presence',
      presence: { user_id: 'u', status: 'away', last_seen: null },
    });
    expect(decodeSignal(JSON.stringify({ v: 1, kind: 'presence', user_id: 'u', status: 'offline', last_seen_ms: -1, origin: 'n' }))).toBeUndefined();
  });

  it('keeps its keys under the prefix, with backstop expiries on everything but last_seen', async () => {
    const keyPrefix = newPrefix();
    const clock = createFakeClock();
    const store = await createRedisPresenceStore({ url: REDIS_URL, keyPrefix, clock: clock.now });
    try {
      await store.connect('alice:1', 'c:1', 'node-a');
      await store.typing('alice:1', 'conv:1', true, ['bob:1']);
      const keys = (await keysOf(keyPrefix)).map((key) => key.slice(keyPrefix.length)).sort();
      expect(keys).toEqual(['conns:alice:1', 'live', 'nodes:alice:1', 'throttle:7:alice:1:conv:1', 'typers', 'typing-to:conv:1', 'typing:conv:1', 'user:alice:1']);
      for (const key of ['conns:alice:1', 'nodes:alice:1', 'throttle:7:alice:1:conv:1', 'typing-to:conv:1', 'typing:conv:1']) {
        expect(await admin.pttl(keyPrefix + key)).toBeGreaterThan(0);
      }
      expect(await admin.pttl(`${keyPrefix}user:alice:1`)).toBe(-1);
      await store.disconnect('alice:1', 'c:1');
      await store.typing('alice:1', 'conv:1', false, ['bob:1']);
      const left = (await keysOf(keyPrefix)).map((key) => key.slice(keyPrefix.length)).sort();
      expect(left).toEqual(['throttle:7:alice:1:conv:1', 'user:alice:1']);
    } finally {
      await store.close();
      await removeKeys(keyPrefix);
    }
  });

  it('does not close a client it was given, and refuses one with an ioredis keyPrefix', async () => {
    const keyPrefix = newPrefix();
    const client = new Redis(REDIS_URL, { lazyConnect: true });
    await client.connect();
    try {
      const store = await createRedisPresenceStore({ redis: client, keyPrefix });
      await store.connect('alice', 'c1', 'node-a');
      await store.close();
      expect(await client.ping()).toBe('PONG');
      const prefixed = client.duplicate({ keyPrefix: 'x:', lazyConnect: true });
      await expect(createRedisPresenceStore({ redis: prefixed, keyPrefix })).rejects.toThrow(/keyPrefix/);
      prefixed.disconnect();
    } finally {
      await quit(client);
      await removeKeys(keyPrefix);
    }
  });

  it('fails fast when Redis cannot be reached', async () => {
    await expect(
      createRedisPresenceStore({ url: 'redis://127.0.0.1:1', keyPrefix: newPrefix(), onError: () => {} }),
    ).rejects.toThrow();
  });
});
