import pg from 'pg';
import { DEFAULT_SERVER_URL } from '../sql/test-databases.js';

/**
 * A fault for tests: `rounds` times, `everyMs` apart, terminates every backend connected to the
 * named databases (pg_terminate_backend, what a server restart or an administrator does to each
 * connection), from a connection of its own to the server's `postgres` database. `done` resolves
 * with how many backends were terminated once the rounds are over; `stop()` ends it early.
 */
export function terminateBackendsRepeatedly(databases: readonly string[], options: { everyMs: number; rounds: number }, serverUrl = DEFAULT_SERVER_URL) {
  let running = true;
  const done = (async () => {
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    let terminated = 0;
    try {
      for (let round = 0; running && round < options.rounds; round++) {
        const { rows } = await admin.query<{ n: string }>(
          'select count(pg_terminate_backend(pid)) as n from pg_stat_activity where datname = any($1::text[]) and pid <> pg_backend_pid()',
          [databases],
        );
        terminated += Number(rows[0]?.n ?? 0);
        await new Promise((resolve) => setTimeout(resolve, options.everyMs));
      }
    } finally {
      await admin.end().catch(() => {});
    }
    return terminated;
  })();
  done.catch(() => {}); // awaited by the caller through `done` or `stop()`
  return {
    done,
    /** Ends the rounds early; resolves with the backends terminated. */
    stop(): Promise<number> {
      running = false;
      return done;
    },
  };
}
