/**
 * A minimal SQL port shared by the PostgreSQL (pg) and PGlite adapters, so the event store, the
 * projections and the users table run the same SQL on both. Parameters are positional ($1...).
 */
export type Row = Record<string, unknown>;

export interface SqlClient {
  query<R extends Row = Row>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

export interface SqlDatabase extends SqlClient {
  readonly kind: 'postgres' | 'pglite';
  /** Runs several statements with no parameters (schema set-up). */
  exec(sql: string): Promise<void>;
  /**
   * LISTENs on `channel` over a connection of its own, kept open (reconnected after a failure)
   * until the returned function is called. `onNotify` receives each notification's payload, and
   * null after a reconnection: notifications sent while disconnected are lost, so the caller
   * should look for itself. Only where other processes can write: PostgreSQL, not PGlite.
   */
  listen?(channel: string, onNotify: (payload: string | null) => void, onError: (error: unknown) => void): () => Promise<void>;
  /** BEGIN; fn; COMMIT (ROLLBACK when fn throws). */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
