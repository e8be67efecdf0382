import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTempDatabases } from '../testing/postgres.js';
import { createSqlUserRepository } from '../users/sql.js';
import { createSqlLoginThrottle } from './sql.js';

/** The per-account login throttle on both SQL adapters. */
describe.each(['pglite', 'postgres'] as const)('SQL login throttle on %s', (adapter) => {
  let db: SqlDatabase;
  let drop = async () => {};
  let users: ReturnType<typeof createSqlUserRepository>;
  let n = 0;
  const newUser = async () => {
    const name = `t_${adapter}_${++n}`;
    return (await users.create({ username: name, email: `${name}@example.test`, password: 'a long enough password', phone_number: null })).user_id;
  };
  const unlock = (userId: string) => db.query('UPDATE login_throttle SET locked_until = now() - interval \'1 ms\' WHERE user_id = $1', [userId]);

  beforeAll(async () => {
    if (adapter === 'pglite') {
      db = await createPgliteDatabase();
    } else {
      const temp = await createTempDatabases('throttle_test', 1);
      drop = temp.drop;
      db = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 8 });
    }
    users = createSqlUserRepository(db, { argon2: { memoryKiB: 1024, timeCost: 1, parallelism: 1 } });
    await users.ensureSchema();
    await createSqlLoginThrottle(db, { freeAttempts: 3, baseMs: 60_000, maxMs: 300_000 }).ensureSchema();
  });
  afterAll(async () => {
    await db?.close();
    await drop();
  });

  it('allows a few failures, then locks for a time that doubles per failure up to the cap', async () => {
    const throttle = createSqlLoginThrottle(db, { freeAttempts: 3, baseMs: 60_000, maxMs: 200_000 });
    const id = await newUser();
    for (let i = 0; i < 3; i++) expect(await throttle.begin(id)).toEqual({ allowed: true });
    const first = await throttle.begin(id);
    expect(first.allowed).toBe(false);
    if (first.allowed) return;
    expect(first.retryAfterMs).toBeGreaterThan(55_000);
    expect(first.retryAfterMs).toBeLessThanOrEqual(60_000);

    const locks: number[] = [];
    for (let i = 0; i < 3; i++) {
      await unlock(id);
      expect(await throttle.begin(id)).toEqual({ allowed: true });
      const refused = await throttle.begin(id);
      if (refused.allowed) throw new Error('not locked');
      locks.push(refused.retryAfterMs);
    }
    // 120 s, then 240 s capped at 200 s, then still 200 s.
    expect(locks[0]).toBeGreaterThan(115_000);
    expect(locks[0]).toBeLessThanOrEqual(120_000);
    expect(locks[1]).toBeGreaterThan(195_000);
    expect(locks[1]).toBeLessThanOrEqual(200_000);
    expect(locks[2]).toBeGreaterThan(195_000);
  });

  it('a success clears the count; other accounts are not affected', async () => {
    const throttle = createSqlLoginThrottle(db, { freeAttempts: 3, baseMs: 60_000, maxMs: 300_000 });
    const id = await newUser();
    const other = await newUser();
    await throttle.begin(id);
    await throttle.begin(id);
    await throttle.succeeded(id);
    for (let i = 0; i < 3; i++) expect((await throttle.begin(id)).allowed).toBe(true);
    expect((await throttle.begin(id)).allowed).toBe(false);
    expect((await throttle.begin(other)).allowed).toBe(true);
  });

  it('parallel attempts cannot slip past the limit', async () => {
    const throttle = createSqlLoginThrottle(db, { freeAttempts: 3, baseMs: 60_000, maxMs: 300_000 });
    const id = await newUser();
    const results = await Promise.all(Array.from({ length: 10 }, () => throttle.begin(id)));
    expect(results.filter((r) => r.allowed)).toHaveLength(3);
  });

  it('a count idle for a day starts again', async () => {
    const throttle = createSqlLoginThrottle(db, { freeAttempts: 3, baseMs: 60_000, maxMs: 300_000 });
    const id = await newUser();
    for (let i = 0; i < 3; i++) await throttle.begin(id);
    await db.query("UPDATE login_throttle SET locked_until = NULL, last_failure_at = now() - interval '25 hours' WHERE user_id = $1", [id]);
    expect((await throttle.begin(id)).allowed).toBe(true);
    expect((await throttle.begin(id)).allowed).toBe(true);
  });
});
