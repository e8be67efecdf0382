import pg from 'pg';
import { DependencyUnavailableError, unreported, type DependencyRegistry, type DependencyReporter } from '../../domain/ports/health.js';
import type { Row, SqlClient, SqlDatabase } from '../../domain/ports/sql.js';

export type PostgresDatabaseOptions = {
  connectionString: string;
  /** Pool size (default 10). */
  max?: number;
  applicationName?: string;
  /** The database's name in errors and health reports (default "postgresql"). */
  dependencyName?: string;
  /** Where the database registers (with a `select 1` probe) and reports whether it is reachable. */
  health?: DependencyRegistry;
  /** Longest wait for a connection (a new one, or a pooled one to become free) before a call fails (default 10 s). */
  connectionTimeoutMs?: number;
};

/** SQLSTATE classes and codes that mean the server cannot serve this connection, not that the statement was refused. */
const CONNECTION_SQLSTATE = /^(08|57P0[1-4]$|53300$)/;
/** Socket errors of Node.js that mean the server cannot be reached. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/** pg's own errors for a lost or unobtainable connection (they carry no code). */
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|not queryable|Connection ended|Client was closed/;

/**
 * True when `error` says the server could not be reached or dropped the connection (restart,
 * shutdown, network), as opposed to a statement the server refused (a constraint, a syntax error).
 */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof DependencyUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return CONNECTION_SQLSTATE.test(code) || NETWORK_CODES.has(code);
  if (error instanceof AggregateError) return error.errors.some(isConnectionFailure);
  return CONNECTION_MESSAGES.test(error.message);
}

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
    // A call never waits for a connection without bound (a server that does not answer).
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    // A connection to a server that vanished without a FIN (host down, network cut) is noticed.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  const dependency = options.dependencyName ?? 'postgresql';
  const health: DependencyReporter =
    options.health?.register(dependency, async () => {
      await pool.query('select 1');
    }) ?? unreported;
  // An idle client that loses its connection emits 'error' on the pool; without a listener that
  // would crash the process. The next query on a fresh client reports the failure instead.
  pool.on('error', (error) => {
    if (isConnectionFailure(error)) health.down(error);
  });
  let closed: Promise<void> | undefined;
  const prepared = preparedStatements();

  /** A connection failure becomes DependencyUnavailableError (and a down report); anything else is the server's answer. */
  const failure = (error: unknown): unknown => {
    if (error instanceof DependencyUnavailableError || !isConnectionFailure(error)) return error;
    health.down(error);
    return new DependencyUnavailableError(dependency, { cause: error });
  };
  const run = async <R extends pg.QueryResultRow>(on: pg.Pool | pg.PoolClient, config: pg.QueryConfig | string): Promise<pg.QueryResult<R>> => {
    try {
      const result = await on.query<R>(config);
      health.up();
      return result;
    } catch (error) {
      throw failure(error);
    }
  };

  return {
    kind: 'postgres',
    async query<R extends Row = Row>(text: string, params?: unknown[]) {
      const result = await run<R>(pool, prepared.config(text, params));
      return { rows: result.rows };
    },
    async exec(sql: string) {
      await run(pool, sql);
    },
    async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw failure(error);
      }
      // pg-pool listens for 'error' only on idle clients: while this one is checked out, a lost
      // connection (a server restart, pg_terminate_backend) emits 'error' on it with no listener,
      // which would end the process. Keep the error instead; the next statement fails with it.
      let lost: Error | undefined;
      const onError = (error: Error) => {
        lost ??= error;
        health.down(error);
      };
      client.on('error', onError);
      let failed = false;
      try {
        await run(client, 'BEGIN');
        const tx: SqlClient = {
          async query<R extends Row = Row>(text: string, params?: unknown[]) {
            const result = await run<R>(client, prepared.config(text, params));
            return { rows: result.rows };
          },
        };
        const value = await fn(tx);
        await run(client, 'COMMIT');
        return value;
      } catch (error) {
        failed = true;
        if (lost === undefined) await client.query('ROLLBACK').catch(() => {});
        // A lost connection surfaces as "unavailable" even when fn threw something of its own about it.
        if (lost !== undefined && !(error instanceof DependencyUnavailableError)) throw failure(lost);
        throw error;
      } finally {
        client.removeListener('error', onError);
        // A client whose transaction failed is destroyed, never reused: whatever state the failure
        // left on it (a half-read reply, a session setting, a lost socket) goes with it.
        client.release(failed ? (lost ?? new Error('transaction failed')) : undefined);
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
          if (isConnectionFailure(error)) health.down(error);
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
          health.up();
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
