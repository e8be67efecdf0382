import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../domain/errors.js';
import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../sql/port.js';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTempDatabases } from '../testing/postgres.js';
import { createSqlUserRepository } from './sql.js';

/** One suite for the users table on both SQL adapters. */
describe.each(['pglite', 'postgres'] as const)('SQL user repository on %s', (adapter) => {
  let db: SqlDatabase;
  let drop = async () => {};
  let users: ReturnType<typeof createSqlUserRepository>;

  beforeAll(async () => {
    if (adapter === 'pglite') {
      db = await createPgliteDatabase();
    } else {
      const temp = await createTempDatabases('users_test', 1);
      drop = temp.drop;
      db = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 4 });
    }
    users = createSqlUserRepository(db, { scryptCost: { ln: 10, r: 8, p: 1 } });
    await users.ensureSchema();
    await users.ensureSchema(); // idempotent
  });
  afterAll(async () => {
    await db?.close();
    await drop();
  });

  const conflictCode = async (promise: Promise<unknown>) => {
    const error = await promise.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).kind).toBe('conflict');
    return (error as DomainError).code;
  };

  it('creates a user and finds it by id, username or email (any case)', async () => {
    const created = await users.create({ username: 'Alice', email: 'Alice@Example.test', password: 'alice password', phone_number: '+33 6 12' });
    expect(created).toEqual({
      user_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      username: 'Alice',
      email: 'Alice@Example.test',
      phone_number: '+33 6 12',
      created_at: expect.any(String),
    });
    expect(created).not.toHaveProperty('password_hash');
    expect(await users.findById(created.user_id)).toEqual(created);
    expect((await users.findByLogin('alice'))?.user_id).toBe(created.user_id);
    expect((await users.findByLogin('ALICE@example.TEST'))?.user_id).toBe(created.user_id);
    expect((await users.findByLogin('alice'))?.password_hash).toMatch(/^\$scrypt\$/);
    expect(await users.findByLogin('nobody')).toBeNull();
    expect(await users.findById('not-a-uuid')).toBeNull();
  });

  it('keeps usernames and emails unique ignoring case, even when registrations race', async () => {
    await users.create({ username: 'bob', email: 'bob@example.test', password: 'bob password', phone_number: null });
    expect(await conflictCode(users.create({ username: 'BOB', email: 'other@example.test', password: 'x'.repeat(8), phone_number: null }))).toBe('username_taken');
    expect(await conflictCode(users.create({ username: 'bobby', email: 'BOB@example.test', password: 'x'.repeat(8), phone_number: null }))).toBe('email_taken');

    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => users.create({ username: 'racer', email: `racer${i}@example.test`, password: 'x'.repeat(8), phone_number: null })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as DomainError).code).toBe('username_taken');
  });

  it('authenticates only with the right password', async () => {
    const carol = await users.create({ username: 'carol', email: 'carol@example.test', password: 'carol password', phone_number: null });
    expect(await users.authenticate('carol', 'carol password')).toEqual(carol);
    expect(await users.authenticate('CAROL@example.test', 'carol password')).toEqual(carol);
    expect(await users.authenticate('carol', 'wrong password')).toBeNull();
    expect(await users.authenticate('nobody', 'carol password')).toBeNull();
  });

  it('answers existing() for registered ids only; non-UUIDs simply do not exist', async () => {
    const dave = await users.create({ username: 'dave', email: 'dave@example.test', password: 'dave password', phone_number: null });
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect(await users.existing([dave.user_id, unknown, 'not-a-uuid', '', dave.user_id.toUpperCase()])).toEqual(new Set([dave.user_id]));
    expect(await users.existing([])).toEqual(new Set());
  });
});
