import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempDatabases } from '../testing/postgres.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { MAX_PREPARED, createPostgresDatabase } from './postgres.js';
import { DependencyUnavailableError } from '../../domain/ports/health.js';

describe('PostgreSQL adapter: prepared statements', () => {
  let db: SqlDatabase;
  let drop = async () => {};

  beforeAll(async () => {
    const temp = await createTempDatabases('sql_test', 1);
    drop = temp.drop;
    db = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 2 });
    await db.exec('create table items (id int primary key, label text not null)');
  });
  afterAll(async () => {
    await db?.close();
    await drop();
  });

  /** The statements prepared on the connection a transaction runs on. */
  const preparedOnConnection = (tx: { query: SqlDatabase['query'] }) =>
    tx.query<{ name: string; statement: string }>('select name, statement from pg_prepared_statements order by name').then((r) => r.rows);

  it('prepares a statement with parameters once per connection and answers each call with its own values', async () => {
    await db.transaction(async (tx) => {
      for (let i = 1; i <= 3; i++) await tx.query('insert into items (id, label) values ($1, $2)', [i, `item ${i}`]);
      const { rows } = await tx.query<{ label: string }>('select label from items where id = $1', [2]);
      expect(rows).toEqual([{ label: 'item 2' }]);
      const prepared = await preparedOnConnection(tx);
      expect(prepared.filter((p) => p.statement.startsWith('insert into items'))).toHaveLength(1);
      expect(prepared.filter((p) => p.statement.startsWith('select label from items'))).toHaveLength(1);
    });
    // the pool's other path (no transaction) reuses the same names and reads what was committed
    const { rows } = await db.query<{ label: string }>('select label from items where id = $1', [3]);
    expect(rows).toEqual([{ label: 'item 3' }]);
  });

  it('leaves statements without parameters unprepared', async () => {
    await db.transaction(async (tx) => {
      await tx.query('select count(*) from items');
      const prepared = await preparedOnConnection(tx);
      expect(prepared.some((p) => p.statement === 'select count(*) from items')).toBe(false);
    });
  });

  it('bounds what a connection holds: texts past the cap still run, unnamed', async () => {
    await db.transaction(async (tx) => {
      // distinct texts (generated SQL would look like this): more than the cap
      for (let k = 0; k < MAX_PREPARED + 20; k++) {
        const { rows } = await tx.query<{ v: number }>(`select $1::int + ${k} as v`, [1]);
        expect(rows[0]!.v).toBe(1 + k);
      }
      const prepared = await preparedOnConnection(tx);
      expect(prepared.length).toBeLessThanOrEqual(MAX_PREPARED);
      expect(prepared.length).toBeGreaterThan(MAX_PREPARED - 10);
    });
  });
});

describe('PostgreSQL adapter: connections lost under a transaction', () => {
  let db: SqlDatabase;
  let admin: SqlDatabase;
  let drop = async () => {};
  const reports: string[] = [];

  beforeAll(async () => {
    const temp = await createTempDatabases('sql_lost', 1);
    drop = temp.drop;
    db = createPostgresDatabase({
      connectionString: temp.urls[0]!,
      max: 1,
      dependencyName: 'postgresql test',
      health: { register: () => ({ up: () => void reports.push('up'), down: () => void reports.push('down') }) },
    });
    admin = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 1 });
    await db.exec('create table items (id int primary key)');
  });
  afterAll(async () => {
    await db?.close();
    await admin?.close();
    await drop();
  });

  const backendPid = async (tx: { query: SqlDatabase['query'] }) => (await tx.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  const terminate = (pid: number) => admin.query('select pg_terminate_backend($1)', [pid]);
  /** Until the terminated backend's connection has been seen to drop by the client. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

  it('survives the backend of a checked-out client being terminated, fails that transaction as unavailable, and the next one works', async () => {
    // Without an 'error' listener on the checked-out client, the lost connection is an uncaught
    // error: vitest fails the run on it.
    const failed = db.transaction(async (tx) => {
      await tx.query('insert into items (id) values (1)');
      await terminate(await backendPid(tx));
      await settle(); // the client is idle inside the transaction when its connection drops
      await tx.query('insert into items (id) values (2)');
    });
    await expect(failed).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(reports).toContain('down');
    await db.transaction(async (tx) => {
      await tx.query('insert into items (id) values (3)');
    });
    const { rows } = await db.query<{ id: number }>('select id from items order by id');
    expect(rows.map((r) => r.id)).toEqual([3]); // nothing of the broken transaction was committed
    expect(reports.at(-1)).toBe('up');
  });

  it('survives a backend terminated while the transaction function awaits something else, and COMMIT reports it', async () => {
    const failed = db.transaction(async (tx) => {
      await terminate(await backendPid(tx));
      await settle();
      return 'done';
    });
    await expect(failed).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(await db.transaction(async (tx) => (await tx.query<{ one: number }>('select 1 as one')).rows[0]!.one)).toBe(1);
  });

  it('destroys the client of a failed transaction instead of handing it to the next caller', async () => {
    let first = 0;
    await expect(
      db.transaction(async (tx) => {
        first = await backendPid(tx);
        throw new Error('the caller gave up');
      }),
    ).rejects.toThrow('the caller gave up');
    const next = await db.transaction((tx) => backendPid(tx));
    expect(next).not.toBe(first);
  });

  it('answers a query while the server cannot be reached with DependencyUnavailableError', async () => {
    const nowhere = createPostgresDatabase({ connectionString: 'postgres://postgres@127.0.0.1:1/none', max: 1, dependencyName: 'postgresql nowhere' });
    try {
      await expect(nowhere.query('select 1')).rejects.toMatchObject({ name: 'DependencyUnavailableError', dependency: 'postgresql nowhere' });
      await expect(nowhere.transaction(async () => 1)).rejects.toBeInstanceOf(DependencyUnavailableError);
    } finally {
      await nowhere.close();
    }
  });
});
