import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../domain/errors.js';
import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTempDatabases } from '../testing/postgres.js';
import { hashScrypt } from './password-scrypt.js';
import { createSqlUserRepository } from './sql.js';

/** One suite for the users table on both SQL adapters. */
const cheap = { memoryKiB: 1024, timeCost: 1, parallelism: 1 };

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
    users = createSqlUserRepository(db, { argon2: cheap });
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
    expect((await users.findByLogin('alice'))?.password_hash).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
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
  const hashOf = async (userId: string) => (await users.findRecordById(userId))!.password_hash;

  it('rehashes a legacy scrypt hash to Argon2id on a successful login, and keeps it on a failed one', async () => {
    const erin = await users.create({ username: 'erin', email: 'erin@example.test', password: 'erin old password', phone_number: null });
    const legacy = await hashScrypt('erin old password', { ln: 10, r: 8, p: 1 });
    await db.query('UPDATE users SET password_hash = $2 WHERE user_id = $1', [erin.user_id, legacy]);
    expect(await users.authenticate('erin', 'not erin password')).toBeNull();
    expect(await hashOf(erin.user_id)).toBe(legacy);
    expect(await users.authenticate('erin', 'erin old password')).toEqual(erin);
    expect(await hashOf(erin.user_id)).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    expect(await users.authenticate('erin', 'erin old password')).toEqual(erin);
  });

  it('rehashes an Argon2id hash made with outdated parameters on a successful login', async () => {
    const older = createSqlUserRepository(db, { argon2: { memoryKiB: 512, timeCost: 1, parallelism: 1 } });
    const fay = await older.create({ username: 'fay', email: 'fay@example.test', password: 'fay long password', phone_number: null });
    expect(await hashOf(fay.user_id)).toMatch(/m=512,t=1,p=1/);
    expect(await users.authenticate('fay', 'fay long password')).toEqual(fay);
    expect(await hashOf(fay.user_id)).toMatch(/m=1024,t=1,p=1/);
  });

  it('changing the password replaces the hash and moves the token version on; disabling refuses logins', async () => {
    const gus = await users.create({ username: 'gus', email: 'gus@example.test', password: 'gus first password', phone_number: null });
    expect((await users.findRecordById(gus.user_id))!.token_version).toBe(0);
    expect(await users.changePassword(gus.user_id, 'gus second password')).toBe(1);
    expect(await users.authenticate('gus', 'gus first password')).toBeNull();
    expect(await users.authenticate('gus', 'gus second password')).toEqual(gus);
    expect(await users.bumpTokenVersion(gus.user_id)).toBe(2);
    expect(await users.bumpTokenVersion('00000000-0000-4000-8000-000000000000')).toBeNull();

    expect(await users.setDisabled(gus.user_id, true)).toBe(true);
    const disabled = (await users.findRecordById(gus.user_id))!;
    expect(disabled.disabled_at).not.toBeNull();
    expect(disabled.token_version).toBe(3);
    expect(await users.authenticate('gus', 'gus second password')).toBeNull();
    expect(await users.setDisabled(gus.user_id, false)).toBe(true);
    expect(await users.authenticate('gus', 'gus second password')).toEqual(gus);
    expect(await users.setDisabled('nope', true)).toBe(false);
  });
});
