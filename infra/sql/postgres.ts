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

/** How many distinct statement texts a pool prepares (per connection, on first use). */
export const MAX_PREPARED = 256;

/**
 * Statements with parameters run as named prepared statements: each connection parses and plans
 * a text once, then only binds and executes it. The SQL of this project is constant text with
 * positional parameters, so a few dozen names cover it; texts past MAX_PREPARED (which would mean
 * generated SQL) run unnamed, so a connection never holds an unbounded set.
 */
function preparedStatements() {
  const names = new Map<string, string>();
  return {
    config(text: string, params: unknown[] | undefined): pg.QueryConfig {
      if (params === undefined || params.length === 0) return { text };
      let name = names.get(text);
      if (name === undefined && names.size < MAX_PREPARED) {
        name = `chat_${names.size + 1}`;
        names.set(text, name);
      }
      return name === undefined ? { text, values: params } : { name, text, values: params };
    },
  };
}

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
  const prepared = preparedStatements();

  return {
    kind: 'postgres',
    async query<R extends Row = Row>(text: string, params?: unknown[]) {
      const result = await pool.query<R>(prepared.config(text, params));
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
            const result = await client.query<R>(prepared.config(text, params));
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
    listen(channel, onNotify, onError) {
      if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new RangeError(`not a plain channel name: ${channel}`);
      let stopped = false;
      let client: pg.Client | null = null;
      let retry: NodeJS.Timeout | null = null;
      let failures = 0;
      const connect = async () => {
        retry = null;
        if (stopped) return;
        const c = new pg.Client({
          connectionString: options.connectionString,
          ...(options.applicationName !== undefined ? { application_name: `${options.applicationName} (listen)` } : {}),
        });
        client = c;
        const lost = (error: unknown) => {
          if (client !== c) return; // already handled
          client = null;
          c.removeAllListeners('notification');
          c.end().catch(() => {});
          if (stopped) return;
          onError(error);
          failures++;
          // Back off to at most 5 s; the timer does not keep the process alive.
          retry = setTimeout(() => void connect(), Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
          retry.unref();
        };
        c.on('error', lost);
        c.on('end', () => lost(new Error('the LISTEN connection closed')));
        c.on('notification', (message) => {
          if (message.channel === channel) onNotify(message.payload ?? '');
        });
        try {
          await c.connect();
          await c.query(`LISTEN ${channel}`);
          if (stopped) {
            await c.end().catch(() => {});
            return;
          }
          // After a failure, notifications may have been missed: say so (null).
          if (failures > 0) onNotify(null);
          failures = 0;
        } catch (error) {
          lost(error);
        }
      };
      void connect();
      return async () => {
        stopped = true;
        if (retry !== null) clearTimeout(retry);
        const c = client;
        client = null;
        if (c !== null) await c.end().catch(() => {});
      };
    },
    close() {
      closed ??= pool.end();
      return closed;
    },
  };
}
