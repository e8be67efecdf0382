import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Throw-away PostgreSQL databases for tests: the machine's server is shared with other runs, so
 * each test creates databases with random names and drops them afterwards.
 */
export const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates `count` empty databases; returns their URLs and a function that drops them. */
export async function createTempDatabases(prefix: string, count = 1): Promise<{ urls: string[]; drop: () => Promise<void> }> {
  const names = Array.from({ length: count }, () => `${prefix}_${randomBytes(6).toString('hex')}`);
  await admin(async (client) => {
    for (const name of names) await client.query(`CREATE DATABASE ${name}`);
  });
  return {
    urls: names.map(databaseUrl),
    drop: () =>
      admin(async (client) => {
        for (const name of names) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }),
  };
}
