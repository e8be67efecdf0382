import type { SqlClient, SqlDatabase } from '../../domain/ports/sql.js';
import type { Attempt, LoginThrottle, ThrottleSettings } from '../../gateways/ports/login-throttle.js';
import { CANONICAL_UUID } from '../../domain/fields.js';

/** The same SQL on PGlite and PostgreSQL; time is the database's (every API process agrees on it). */
export const LOGIN_THROTTLE_SCHEMA = `
CREATE TABLE IF NOT EXISTS login_throttle (
  user_id uuid PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
  failures integer NOT NULL,
  locked_until timestamptz,
  last_failure_at timestamptz NOT NULL
);
`;


export function createSqlLoginThrottle(db: SqlClient & Pick<SqlDatabase, 'exec'>, settings: ThrottleSettings): LoginThrottle {
  // The failure count after this attempt: a count idle for a day starts again.
  const next = `CASE WHEN login_throttle.last_failure_at < now() - interval '1 day' THEN 1 ELSE login_throttle.failures + 1 END`;
  const lockFor = (count: string) =>
    `CASE WHEN ${count} >= $2 THEN now() + make_interval(secs => least($4::float8, $3::float8 * power(2::float8, ${count} - $2)) / 1000) END`;
  return {
    async ensureSchema() {
      await db.exec(LOGIN_THROTTLE_SCHEMA);
    },

    async begin(userId: string): Promise<Attempt> {
      if (!CANONICAL_UUID.test(userId)) throw new TypeError(`not a user id: ${userId}`);
      const params = [userId, settings.freeAttempts, settings.baseMs, settings.maxMs];
      const { rows } = await db.query(
        `INSERT INTO login_throttle (user_id, failures, locked_until, last_failure_at)
         VALUES ($1::uuid, 1, ${lockFor('1')}, now())
         ON CONFLICT (user_id) DO UPDATE SET failures = ${next}, locked_until = ${lockFor(next)}, last_failure_at = now()
         WHERE login_throttle.locked_until IS NULL OR login_throttle.locked_until <= now()
         RETURNING failures`,
        params,
      );
      if (rows.length > 0) return { allowed: true };
      const locked = await db.query<{ ms: number | string | null }>(
        'SELECT ceil(extract(epoch FROM (locked_until - now())) * 1000) AS ms FROM login_throttle WHERE user_id = $1::uuid',
        [userId],
      );
      return { allowed: false, retryAfterMs: Math.max(1, Number(locked.rows[0]?.ms ?? 1)) };
    },

    async succeeded(userId: string): Promise<void> {
      if (!CANONICAL_UUID.test(userId)) return;
      await db.query('DELETE FROM login_throttle WHERE user_id = $1::uuid', [userId]);
    },
  };
}
