import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { databaseUrl } from '../sql/test-databases.js';

const run = promisify(execFile);

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export type PrivatePostgres = {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly serverUrl: string;
  /** Creates a database on it and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown (what `pg_ctlcluster stop -m fast` does on a restart): every connection is cut. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and deletes its data and configuration. */
  drop(): Promise<void>;
};

/**
 * A PostgreSQL cluster of its own on a spare loopback port, for tests that stop and start the
 * server (the machine's shared server must never be restarted). Made with Debian's
 * pg_createcluster (trust authentication), removed with pg_dropcluster. Takes a few seconds:
 * make one per test file.
 */
export async function createPrivatePostgres(): Promise<PrivatePostgres> {
  const versions = (await readdir('/etc/postgresql')).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  const version = versions[0];
  if (version === undefined) throw new Error('no PostgreSQL installation under /etc/postgresql');
  const name = `chat_${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const ctl = (action: string, ...extra: string[]) => run('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, action, ...extra]);
  await run('pg_createcluster', ['-p', String(port), version, name, '--', '--auth=trust']);
  try {
    await ctl('start');
  } catch (error) {
    await run('pg_dropcluster', ['--stop', version, name]).catch(() => {});
    throw error;
  }
  const serverUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    serverUrl,
    async createDatabase(database: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(database)) throw new Error(`invalid database name ${database}`);
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        await client.query(`create database "${database}"`);
      } finally {
        await client.end();
      }
      return databaseUrl(serverUrl, database);
    },
    stop: () => ctl('stop', '-m', 'fast').then(() => {}),
    start: () => ctl('start').then(() => {}),
    drop: () => run('pg_dropcluster', ['--stop', version, name]).then(() => {}),
  };
}
