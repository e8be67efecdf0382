import { PGlite, type PGliteInterface } from '@electric-sql/pglite';
import type { Row, SqlClient, SqlDatabase } from '../../domain/ports/sql.js';

export type PgliteDatabaseOptions = {
  /** A directory for the data files; undefined keeps the database in memory. */
  dataDir?: string;
};

/**
 * SqlDatabase over an embedded PGlite (PostgreSQL compiled to WASM). PGlite has one connection:
 * it serialises transactions itself, and a query issued outside a transaction waits until the
 * running transaction ends. Inside `transaction(fn)` use only the `tx` handed to fn: calling the
 * database itself from there would wait for the transaction that is waiting for it.
 * int8 comes back as number, timestamptz as Date, json / jsonb parsed.
 */
export async function createPgliteDatabase(options: PgliteDatabaseOptions = {}): Promise<SqlDatabase> {
  const db = options.dataDir === undefined ? await PGlite.create() : await PGlite.create({ dataDir: options.dataDir });
  return wrapPglite(db);
}

/**
 * The SqlDatabase over a PGlite instance made elsewhere (e.g. `template.clone()`, which is much
 * faster than starting a new instance). close() closes the instance.
 */
export function wrapPglite(db: PGliteInterface): SqlDatabase {
  let closed: Promise<void> | undefined;

  return {
    kind: 'pglite',
    async query<R extends Row = Row>(text: string, params?: unknown[]) {
      const result = await db.query<R>(text, params);
      return { rows: result.rows };
    },
    async exec(sql: string) {
      await db.exec(sql);
    },
    transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      return db.transaction(async (raw) => {
        const tx: SqlClient = {
          async query<R extends Row = Row>(text: string, params?: unknown[]) {
            const result = await raw.query<R>(text, params);
            return { rows: result.rows };
          },
        };
        return fn(tx);
      });
    },
    close() {
      closed ??= db.closed ? Promise.resolve() : db.close();
      return closed;
    },
  };
}
