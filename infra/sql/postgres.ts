import pg from 'pg';
import type { Row, SqlClient, SqlDatabase } from './port.js';

export type PostgresDatabaseOptions = {
  connectionString: string;
  /** Pool size (default 10). */
  max?: number;
  applicationName?: string;
};

/** int8 (bigint) as a JS number for this pool only; values above 2^53 would lose precision. */
const INT8_OID = 20;
const poolTypes = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * SqlDatabase over a pg.Pool. bigint columns come back as numbers (a per-pool type parser, no
 * global change), timestamptz as Date, json / jsonb parsed.
 */
export function createPostgresDatabase(options: PostgresDatabaseOptions): SqlDatabase {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    ...(options.applicationName !== undefined ? { application_name: options.applicationName } : {}),
    types: poolTypes,
  });
  // An idle client that loses its connection emits 'error' on the pool; without a listener that
  // would crash the process. The next query on a fresh client reports the failure instead.
  pool.on('error', () => {});
  let closed: Promise<void> | undefined;

  return {
    kind: 'postgres',
    async query<R extends Row = Row>(text: string, params?: unknown[]) {
      const result = await pool.query<R>(text, params);
      return { rows: result.rows };
    },
    async exec(sql: string) {
      await pool.query(sql);
    },
    async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: unknown;
      try {
        await client.query('BEGIN');
        const tx: SqlClient = {
          async query<R extends Row = Row>(text: string, params?: unknown[]) {
            const result = await client.query<R>(text, params);
            return { rows: result.rows };
          },
        };
        const value = await fn(tx);
        await client.query('COMMIT');
        return value;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError; // the connection is unusable: destroy it rather than reuse it
        }
        throw error;
      } finally {
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    close() {
      closed ??= pool.end();
      return closed;
    },
  };
}
