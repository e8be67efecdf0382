import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTempDatabases } from '../testing/postgres.js';
import { createSqlUserRepository } from '../users/sql.js';
import { createSqlSessionStore } from './sql.js';
import type { SessionStore } from '../../gateways/ports/sessions.js';

/** One suite for the sessions table on both SQL adapters. */
describe.each(['pglite', 'postgres'] as const)('SQL session store on %s', (adapter) => {
  let db: SqlDatabase;
  let drop = async () => {};
  let sessions: SessionStore;
  let users: ReturnType<typeof createSqlUserRepository>;
  let n = 0;
  const newUser = async () => {
    const name = `s_${adapter}_${++n}`;
    return users.create({ username: name, email: `${name}@example.test`, password: 'a long enough password', phone_number: null });
  };

  beforeAll(async () => {
    if (adapter === 'pglite') {
      db = await createPgliteDatabase();
    } else {
      const temp = await createTempDatabases('sessions_test', 1);
      drop = temp.drop;
      db = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 4 });
    }
    users = createSqlUserRepository(db, { argon2: { memoryKiB: 1024, timeCost: 1, parallelism: 1 } });
    await users.ensureSchema();
    sessions = createSqlSessionStore(db, { refreshTtlSeconds: 3600, maxLivePerUser: 50 });
    await sessions.ensureSchema();
    await sessions.ensureSchema(); // idempotent
  });
  afterAll(async () => {
    await db?.close();
    await drop();
  });

  it('creates a live session whose refresh token is stored hashed only', async () => {
    const u = await newUser();
    const s = await sessions.create(u.user_id);
    expect(s.refreshToken).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(s.expiresAt.getTime()).toBeGreaterThan(Date.now() + 3500_000);
    expect(await sessions.status({ userId: u.user_id, sessionId: s.sessionId, tokenVersion: 0 })).toBe('live');
    const { rows } = await db.query<{ family_hash: string; refresh_hash: string }>('SELECT family_hash, refresh_hash FROM auth_sessions WHERE session_id = $1', [s.sessionId]);
    const [family, secret] = s.refreshToken.split('.');
    expect(JSON.stringify(rows)).not.toContain(family);
    expect(JSON.stringify(rows)).not.toContain(secret);
  });

  it('keeps at most maxLivePerUser live sessions per user: a login past it ends the least recently used one', async () => {
    const capped = createSqlSessionStore(db, { refreshTtlSeconds: 3600, maxLivePerUser: 3 });
    const u = await newUser();
    const other = await newUser();
    const a = await capped.create(u.user_id);
    const b = await capped.create(u.user_id);
    const c = await capped.create(u.user_id);
    expect([a.ended, b.ended, c.ended]).toEqual([[], [], []]);
    const elsewhere = await capped.create(other.user_id);
    // a was used last (a refresh): b is now the least recently used.
    const rotated = await capped.rotate(a.refreshToken);
    expect(rotated.outcome).toBe('rotated');
    const d = await capped.create(u.user_id);
    expect(d.ended).toEqual([b.sessionId]);
    const status = (sessionId: string, userId = u.user_id) => capped.status({ userId, sessionId, tokenVersion: 0 });
    expect(await status(b.sessionId)).toBe('revoked');
    expect([await status(a.sessionId), await status(c.sessionId), await status(d.sessionId)]).toEqual(['live', 'live', 'live']);
    // Another user's sessions are not counted.
    expect(await status(elsewhere.sessionId, other.user_id)).toBe('live');
    const { rows } = await db.query<{ live: number }>('SELECT count(*)::int AS live FROM auth_sessions WHERE user_id = $1 AND revoked_at IS NULL', [u.user_id]);
    expect(rows[0]!.live).toBe(3);
  });

  it('rotates a refresh token on every use; presenting a rotated one revokes the session', async () => {
    const u = await newUser();
    const s = await sessions.create(u.user_id);
    const first = await sessions.rotate(s.refreshToken);
    expect(first).toMatchObject({ outcome: 'rotated', userId: u.user_id, sessionId: s.sessionId });
    if (first.outcome !== 'rotated') throw new Error('not rotated');
    expect(first.refreshToken).not.toBe(s.refreshToken);
    const second = await sessions.rotate(first.refreshToken);
    expect(second.outcome).toBe('rotated');

    // The first token again: reuse. The session is revoked, and its current token stops working too.
    expect(await sessions.rotate(s.refreshToken)).toEqual({ outcome: 'reused', userId: u.user_id, sessionId: s.sessionId });
    expect(await sessions.status({ userId: u.user_id, sessionId: s.sessionId, tokenVersion: 0 })).toBe('revoked');
    if (second.outcome !== 'rotated') throw new Error('not rotated');
    expect(await sessions.rotate(second.refreshToken)).toEqual({ outcome: 'invalid' });
  });

  it('of two concurrent rotations of one token, one wins and the other is reuse', async () => {
    const u = await newUser();
    const s = await sessions.create(u.user_id);
    const outcomes = (await Promise.all([sessions.rotate(s.refreshToken), sessions.rotate(s.refreshToken)])).map((r) => r.outcome).sort();
    expect(outcomes).toEqual(['reused', 'rotated']);
    expect(await sessions.status({ userId: u.user_id, sessionId: s.sessionId, tokenVersion: 0 })).toBe('revoked');
  });

  it('refuses unknown and malformed refresh tokens without touching any session', async () => {
    const u = await newUser();
    const s = await sessions.create(u.user_id);
    const [family] = s.refreshToken.split('.');
    expect(await sessions.rotate('nonsense')).toEqual({ outcome: 'invalid' });
    expect(await sessions.rotate(`${'A'.repeat(22)}.${'B'.repeat(43)}`)).toEqual({ outcome: 'invalid' });
    expect(await sessions.rotate(`${family}.${'B'.repeat(43)}x`)).toEqual({ outcome: 'invalid' });
    expect(await sessions.status({ userId: u.user_id, sessionId: s.sessionId, tokenVersion: 0 })).toBe('live');
  });

  it('revokes one session, or all of a user but one; the others stay live', async () => {
    const u = await newUser();
    const other = await newUser();
    const [a, b, c] = [await sessions.create(u.user_id), await sessions.create(u.user_id), await sessions.create(u.user_id)];
    const theirs = await sessions.create(other.user_id);
    const status = (userId: string, sessionId: string) => sessions.status({ userId, sessionId, tokenVersion: 0 });
    expect(await sessions.revoke(other.user_id, a.sessionId, 'logout')).toBe(false); // not his
    expect(await sessions.revoke(u.user_id, a.sessionId, 'logout')).toBe(true);
    expect(await sessions.revoke(u.user_id, a.sessionId, 'logout')).toBe(false);
    expect(await status(u.user_id, a.sessionId)).toBe('revoked');
    expect(await status(u.user_id, b.sessionId)).toBe('live');
    expect(await sessions.revokeAll(u.user_id, 'password_changed', c.sessionId)).toEqual([b.sessionId]);
    expect(await status(u.user_id, b.sessionId)).toBe('revoked');
    expect(await status(u.user_id, c.sessionId)).toBe('live');
    expect(await sessions.revokeAll(u.user_id, 'logout_all')).toEqual([c.sessionId]);
    expect(await status(other.user_id, theirs.sessionId)).toBe('live');
    expect((await sessions.rotate(c.refreshToken)).outcome).toBe('invalid');
  });

  it('answers stale for an old token version, disabled for a disabled account, unknown for strangers', async () => {
    const u = await newUser();
    const s = await sessions.create(u.user_id);
    const ref = { userId: u.user_id, sessionId: s.sessionId, tokenVersion: 0 };
    expect(await sessions.status({ ...ref, userId: '00000000-0000-4000-8000-000000000000' })).toBe('unknown');
    expect(await sessions.status({ ...ref, sessionId: '00000000-0000-4000-8000-000000000000' })).toBe('unknown');
    expect(await sessions.status({ ...ref, sessionId: 'not-a-uuid' })).toBe('unknown');
    expect(await users.bumpTokenVersion(u.user_id)).toBe(1);
    expect(await sessions.status(ref)).toBe('stale');
    expect(await sessions.status({ ...ref, tokenVersion: 1 })).toBe('live');
    await users.setDisabled(u.user_id, true);
    expect(await sessions.status({ ...ref, tokenVersion: 2 })).toBe('disabled');
  });

  it('answers many statuses in one query, in order', async () => {
    const u = await newUser();
    const [a, b] = [await sessions.create(u.user_id), await sessions.create(u.user_id)];
    await sessions.revoke(u.user_id, b.sessionId, 'logout');
    const refs = [
      { userId: u.user_id, sessionId: a.sessionId, tokenVersion: 0 },
      { userId: u.user_id, sessionId: b.sessionId, tokenVersion: 0 },
      { userId: u.user_id, sessionId: a.sessionId, tokenVersion: 7 },
      { userId: u.user_id, sessionId: 'x', tokenVersion: 0 },
    ];
    expect(await sessions.statuses(refs)).toEqual(['live', 'revoked', 'stale', 'unknown']);
    expect(await sessions.statuses([])).toEqual([]);
  });

  it('expires a session that was not refreshed within its lifetime, and prunes ended sessions', async () => {
    const u = await newUser();
    const short = createSqlSessionStore(db, { refreshTtlSeconds: 1, maxLivePerUser: 50 });
    const s = await short.create(u.user_id);
    await db.query("UPDATE auth_sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1", [s.sessionId]);
    expect(await sessions.status({ userId: u.user_id, sessionId: s.sessionId, tokenVersion: 0 })).toBe('expired');
    expect(await sessions.rotate(s.refreshToken)).toEqual({ outcome: 'invalid' });
    expect(await sessions.prune(new Date(Date.now() + 60_000))).toBeGreaterThanOrEqual(1);
    expect(await sessions.status({ userId: u.user_id, sessionId: s.sessionId, tokenVersion: 0 })).toBe('unknown');
  });
});
