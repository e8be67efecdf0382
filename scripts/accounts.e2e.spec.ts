import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqlDeviceRegistry } from '../infra/devices/sql.js';
import { createSqlEventStore, type SqlEventStore } from '../infra/event-store/sql-event-store.js';
import { createSqlSessionStore } from '../infra/sessions/sql.js';
import type { SqlDatabase } from '../domain/ports/sql.js';
import { createPostgresDatabase } from '../infra/sql/postgres.js';
import { createTempDatabases } from '../infra/testing/postgres.js';
import { createSqlUserRepository } from '../infra/users/sql.js';
import { ndjson, runCliProcess } from './testing/run-cli.js';

/** `npm run accounts` as a real process against PostgreSQL: an operator disables an account and ends sessions. */
describe('npm run accounts', () => {
  let temp: Awaited<ReturnType<typeof createTempDatabases>>;
  let db: SqlDatabase;
  let store: SqlEventStore;
  const cheap = { memoryKiB: 1024, timeCost: 1, parallelism: 1 };

  beforeAll(async () => {
    temp = await createTempDatabases('accounts_cli', 1);
    db = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 4 });
    store = await createSqlEventStore({ shards: [db], ownsDatabases: false });
    await createSqlUserRepository(db, { argon2: cheap }).ensureSchema();
    await createSqlSessionStore(db, { refreshTtlSeconds: 3600, maxLivePerUser: 50 }).ensureSchema();
    await createSqlDeviceRegistry(db).ensureSchema();
  });
  afterAll(async () => {
    await store?.close();
    await db?.close();
    await temp?.drop();
  });

  const run = (...args: string[]) => runCliProcess('accounts', args, { DATABASE_URL: temp.urls[0]! });

  it('disable ends every session and refuses logins; enable lets the user log in again; logout-all ends sessions', async () => {
    const users = createSqlUserRepository(db, { argon2: cheap });
    const sessions = createSqlSessionStore(db, { refreshTtlSeconds: 3600, maxLivePerUser: 50 });
    const devices = createSqlDeviceRegistry(db);
    const erin = await users.create({ username: 'Erin', email: 'erin@example.test', password: 'erin long password', phone_number: null });
    const [a, b] = [await sessions.create(erin.user_id), await sessions.create(erin.user_id)];
    await devices.register({ userId: erin.user_id, sessionId: a.sessionId }, 'android', 'erin-phone');

    const disabled = await run('disable', 'erin');
    expect(disabled.code).toBe(0);
    expect(ndjson(disabled.stdout)).toEqual([{ user_id: erin.user_id, username: 'Erin', action: 'disable', sessions_ended: 2 }]);
    expect(await sessions.status({ userId: erin.user_id, sessionId: a.sessionId, tokenVersion: 1 })).toBe('disabled');
    expect(await users.authenticate('erin', 'erin long password')).toBeNull();
    expect(await devices.list(erin.user_id)).toEqual([]);
    expect((await sessions.rotate(b.refreshToken)).outcome).toBe('invalid');

    expect((await run('enable', 'ERIN@example.test')).code).toBe(0);
    expect(await users.authenticate('erin', 'erin long password')).toEqual(erin);
    const c = await sessions.create(erin.user_id);
    const out = await run('logout-all', 'erin');
    expect(ndjson(out.stdout)).toEqual([{ user_id: erin.user_id, username: 'Erin', action: 'logout-all', sessions_ended: 1 }]);
    expect(await sessions.status({ userId: erin.user_id, sessionId: c.sessionId, tokenVersion: 2 })).toBe('revoked');
  }, 180_000); // three CLI processes, each starting tsx and opening the database

  it('answers a clear error for an unknown account (exit 1) and for bad arguments (exit 2)', async () => {
    const unknown = await run('disable', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('accounts: no account with the username or e-mail "nobody"\n');
    const bad = await run('delete', 'erin');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^accounts: unknown command "delete"/);
    expect((await run('disable')).code).toBe(2);
  }, 180_000);
});
