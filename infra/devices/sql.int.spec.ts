import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTempDatabases } from '../testing/postgres.js';
import { createSqlSessionStore } from '../sessions/sql.js';
import type { SessionStore } from '../../gateways/ports/sessions.js';
import { createSqlUserRepository } from '../users/sql.js';
import { createSqlDeviceRegistry } from './sql.js';

/** One suite for the device table on both SQL adapters. */
describe.each(['pglite', 'postgres'] as const)('SQL device registry on %s', (adapter) => {
  let db: SqlDatabase;
  let drop = async () => {};
  let devices: ReturnType<typeof createSqlDeviceRegistry>;
  let sessions: SessionStore;
  let users: ReturnType<typeof createSqlUserRepository>;
  let n = 0;
  /** A registered user with one live session. */
  const login = async () => {
    const name = `d_${adapter}_${++n}`;
    const user = await users.create({ username: name, email: `${name}@example.test`, password: 'a long enough password', phone_number: null });
    return { userId: user.user_id, sessionId: (await sessions.create(user.user_id)).sessionId };
  };

  beforeAll(async () => {
    if (adapter === 'pglite') {
      db = await createPgliteDatabase();
    } else {
      const temp = await createTempDatabases('devices_test', 1);
      drop = temp.drop;
      db = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 4 });
    }
    users = createSqlUserRepository(db, { argon2: { memoryKiB: 1024, timeCost: 1, parallelism: 1 } });
    await users.ensureSchema();
    sessions = createSqlSessionStore(db, { refreshTtlSeconds: 3600, maxLivePerUser: 50 });
    await sessions.ensureSchema();
    devices = createSqlDeviceRegistry(db);
    await devices.ensureSchema();
    await devices.ensureSchema(); // idempotent
  });
  afterAll(async () => {
    await db?.close();
    await drop();
  });

  it('registers a token once per user: again is not a new device, only the platform and updated_at change', async () => {
    const alice = await login();
    const first = (await devices.register(alice, 'android', 'tok-a1'))!;
    expect(first.created).toBe(true);
    expect(first.device).toMatchObject({ user_id: alice.userId, platform: 'android', token: 'tok-a1', device_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const again = (await devices.register(alice, 'web', 'tok-a1'))!;
    expect(again.created).toBe(false);
    expect(again.device.device_id).toBe(first.device.device_id);
    expect(again.device.platform).toBe('web');
    expect(await devices.list(alice.userId)).toEqual([again.device]);
  });

  it('refuses a token another user holds through a live session; it moves once that session ended', async () => {
    const carol = await login();
    const dave = await login();
    const mine = (await devices.register(carol, 'ios', 'tok-shared'))!;
    expect(await devices.register(dave, 'ios', 'tok-shared')).toBeNull();
    expect((await devices.list(carol.userId)).map((d) => d.token)).toEqual(['tok-shared']);
    expect(await devices.list(dave.userId)).toEqual([]);

    await sessions.revoke(carol.userId, carol.sessionId, 'logout');
    const moved = (await devices.register(dave, 'ios', 'tok-shared'))!;
    expect(moved.created).toBe(true);
    expect(moved.device.user_id).toBe(dave.userId);
    expect(moved.device.device_id).toBe(mine.device.device_id);
    expect(await devices.list(carol.userId)).toEqual([]);
    expect((await devices.listForUsers([carol.userId, dave.userId])).map((d) => d.user_id)).toEqual([dave.userId]);
  });

  it('keeps rows from before sessions with their user', async () => {
    const old = await login();
    const other = await login();
    await devices.register({ userId: old.userId, sessionId: null }, 'android', 'tok-old');
    expect(await devices.register(other, 'android', 'tok-old')).toBeNull();
    expect((await devices.listForUsers([old.userId])).map((d) => d.token)).toEqual(['tok-old']);
  });

  it('sends to tokens of live sessions only; ending sessions releases their tokens', async () => {
    const erin = await login();
    const second = { userId: erin.userId, sessionId: (await sessions.create(erin.userId)).sessionId };
    const third = { userId: erin.userId, sessionId: (await sessions.create(erin.userId)).sessionId };
    await devices.register(erin, 'android', 'tok-e-phone');
    await devices.register(second, 'web', 'tok-e-web');
    await devices.register(third, 'ios', 'tok-e-tablet');
    await devices.register({ userId: erin.userId, sessionId: null }, 'ios', 'tok-e-legacy');
    const tokens = async () => (await devices.listForUsers([erin.userId])).map((d) => d.token).sort();

    // An expired session's token gets nothing (the phone is logged out), though the row stays until released.
    await db.query("UPDATE auth_sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1", [second.sessionId]);
    expect(await tokens()).toEqual(['tok-e-legacy', 'tok-e-phone', 'tok-e-tablet']);
    expect(await devices.releaseSession(erin.userId, erin.sessionId)).toBe(1);
    expect(await tokens()).toEqual(['tok-e-legacy', 'tok-e-tablet']);
    expect(await devices.releaseAllBut(erin.userId, third.sessionId)).toBe(2); // the expired web one and the legacy one
    expect(await tokens()).toEqual(['tok-e-tablet']);
    expect(await devices.releaseAllBut(erin.userId, null)).toBe(1);
    expect(await devices.list(erin.userId)).toEqual([]);
  });

  it('keeps one token per session: a session registering another token (a rotated one) gives up the old one', async () => {
    const ivy = await login();
    const otherSession = { userId: ivy.userId, sessionId: (await sessions.create(ivy.userId)).sessionId };
    await devices.register(otherSession, 'web', 'tok-i-web');
    const first = (await devices.register(ivy, 'android', 'tok-i-1'))!;
    const rotated = (await devices.register(ivy, 'android', 'tok-i-2'))!;
    expect(rotated.created).toBe(true);
    expect(rotated.device.device_id).not.toBe(first.device.device_id);
    expect((await devices.list(ivy.userId)).map((d) => d.token).sort()).toEqual(['tok-i-2', 'tok-i-web']);
    // A hundred registrations through one session leave one token.
    for (let i = 0; i < 100; i++) await devices.register(ivy, 'android', `tok-i-flood-${i}`);
    expect((await devices.list(ivy.userId)).map((d) => d.token).sort()).toEqual(['tok-i-flood-99', 'tok-i-web']);
  });

  it('removes only one of the user own devices, by id or by token', async () => {
    const erin = await login();
    const frank = await login();
    const a = (await devices.register(erin, 'android', 'tok-e1'))!;
    await devices.register({ userId: erin.userId, sessionId: (await sessions.create(erin.userId)).sessionId }, 'web', 'tok-e2');
    const f = (await devices.register(frank, 'android', 'tok-f1'))!;
    expect(await devices.remove(erin.userId, f.device.device_id)).toBe(false); // not hers
    expect(await devices.remove(erin.userId, 'tok-f1')).toBe(false);
    expect(await devices.remove(erin.userId, a.device.device_id.toUpperCase())).toBe(true);
    expect(await devices.remove(erin.userId, a.device.device_id)).toBe(false); // gone
    expect(await devices.remove(erin.userId, 'tok-e2')).toBe(true);
    expect(await devices.list(erin.userId)).toEqual([]);
    expect(await devices.list(frank.userId)).toHaveLength(1);
  });

  it('drops dead tokens whoever holds them', async () => {
    const gina = await login();
    await devices.register(gina, 'android', 'tok-g1');
    await devices.register({ userId: gina.userId, sessionId: (await sessions.create(gina.userId)).sessionId }, 'android', 'tok-g2');
    expect(await devices.removeTokens(['tok-g1', 'tok-g1', 'tok-unknown'])).toBe(1);
    expect((await devices.list(gina.userId)).map((d) => d.token)).toEqual(['tok-g2']);
    expect(await devices.removeTokens([])).toBe(0);
  });
});
