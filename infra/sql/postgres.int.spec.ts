import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempDatabases } from '../testing/postgres.js';
import type { SqlDatabase } from './port.js';
import { MAX_PREPARED, createPostgresDatabase } from './postgres.js';

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
