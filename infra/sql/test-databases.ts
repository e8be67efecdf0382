import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Throw-away PostgreSQL databases for integration tests and benchmarks: created with random names
 * on a server, dropped (with force) by drop().
 */
export type TestDatabases = {
  urls: string[];
  names: string[];
  drop(): Promise<void>;
};

/** The server tests and benchmarks use: TEST_POSTGRES_URL, else the machine's local server. */
export const DEFAULT_SERVER_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The URL of `database` on the server of `serverUrl` (same host, port, user, options). */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function createTestDatabases(count: number, options: { prefix?: string; serverUrl?: string } = {}): Promise<TestDatabases> {
  const serverUrl = options.serverUrl ?? DEFAULT_SERVER_URL;
  const base = `${options.prefix ?? 'test'}_${randomBytes(6).toString('hex')}`;
  if (!/^[a-z_][a-z0-9_]*$/.test(base)) throw new Error(`invalid database name prefix: ${base}`);
  const names: string[] = [];
  const drop = async () => {
    for (const name of names.splice(0)) await onServer(serverUrl, `drop database if exists "${name}" with (force)`);
  };
  try {
    for (let i = 0; i < count; i++) {
      const name = `${base}_${i}`;
      await onServer(serverUrl, `create database "${name}"`);
      names.push(name);
    }
  } catch (error) {
    await drop().catch(() => {});
    throw error;
  }
  return { urls: names.map((name) => databaseUrl(serverUrl, name)), names: [...names], drop };
}
