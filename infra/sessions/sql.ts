import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { SqlClient, SqlDatabase } from '../../domain/ports/sql.js';
import type { NewSession, Rotation, SessionRef, SessionStatus, SessionStore } from '../../gateways/ports/sessions.js';
import { CANONICAL_UUID } from '../../domain/fields.js';

/** The same SQL on PGlite and PostgreSQL; lives beside `users` (it references it). */
export const SESSIONS_SCHEMA = `
CREATE TABLE IF NOT EXISTS auth_sessions (
  session_id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  family_hash text NOT NULL,
  refresh_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_reason text
);
CREATE UNIQUE INDEX IF NOT EXISTS auth_sessions_family_key ON auth_sessions (family_hash);
CREATE INDEX IF NOT EXISTS auth_sessions_user_idx ON auth_sessions (user_id);
`;

const REFRESH_TOKEN = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const secret = (bytes: number) => randomBytes(bytes).toString('base64url');

export type SqlSessionStoreOptions = {
  /** A session ends this long after its last refresh (REFRESH_TOKEN_TTL_SECONDS). */
  refreshTtlSeconds: number;
  /** Live sessions one user may hold (MAX_SESSIONS_PER_USER); the least recently used past it end. */
  maxLivePerUser: number;
};

type StatusRow = {
  session_id: string;
  user_found: boolean;
  token_version: number | null;
  disabled: boolean | null;
  session_found: boolean;
  revoked: boolean | null;
  expired: boolean | null;
};

function statusOf(row: StatusRow | undefined, tokenVersion: number): SessionStatus {
  if (row === undefined || !row.user_found) return 'unknown';
  if (row.disabled) return 'disabled';
  if (!row.session_found) return 'unknown';
  if (row.revoked) return 'revoked';
  if (Number(row.token_version) !== tokenVersion) return 'stale';
  if (row.expired) return 'expired';
  return 'live';
}

const STATUS_COLUMNS = `u.user_id IS NOT NULL AS user_found, u.token_version, u.disabled_at IS NOT NULL AS disabled,
  s.session_id IS NOT NULL AS session_found, s.revoked_at IS NOT NULL AS revoked, s.expires_at <= now() AS expired`;

export function createSqlSessionStore(db: SqlClient & Pick<SqlDatabase, 'exec'>, options: SqlSessionStoreOptions): SessionStore {
  const ttl = options.refreshTtlSeconds;
  return {
    async ensureSchema() {
      await db.exec(SESSIONS_SCHEMA);
    },

    async create(userId: string): Promise<NewSession> {
      if (!CANONICAL_UUID.test(userId)) throw new TypeError(`not a user id: ${userId}`);
      const sessionId = randomUUID();
      const family = secret(16);
      const current = secret(32);
      const { rows } = await db.query<{ expires_at: Date | string }>(
        `INSERT INTO auth_sessions (session_id, user_id, family_hash, refresh_hash, expires_at)
         VALUES ($1::uuid, $2::uuid, $3, $4, now() + make_interval(secs => $5)) RETURNING expires_at`,
        [sessionId, userId, sha256(family), sha256(current), ttl],
      );
      // Concurrent logins may each end one session too many; never fewer than the limit stay live.
      const ended = await db.query<{ session_id: string }>(
        `UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'session_limit'
         WHERE session_id IN (
           SELECT session_id FROM auth_sessions WHERE user_id = $1::uuid AND revoked_at IS NULL AND expires_at > now()
           ORDER BY last_used_at DESC, created_at DESC, session_id OFFSET $2)
         RETURNING session_id::text AS session_id`,
        [userId, options.maxLivePerUser],
      );
      return { sessionId, refreshToken: `${family}.${current}`, expiresAt: new Date(rows[0]!.expires_at), ended: ended.rows.map((r) => r.session_id) };
    },

    async rotate(refreshToken: string): Promise<Rotation> {
      const m = REFRESH_TOKEN.exec(refreshToken);
      if (!m) return { outcome: 'invalid' };
      const familyHash = sha256(m[1]!);
      const presented = sha256(m[2]!);
      const next = secret(32);
      const rotated = await db.query<{ session_id: string; user_id: string }>(
        `UPDATE auth_sessions SET refresh_hash = $3, last_used_at = now(), expires_at = now() + make_interval(secs => $4)
         WHERE family_hash = $1 AND refresh_hash = $2 AND revoked_at IS NULL AND expires_at > now()
         RETURNING session_id::text AS session_id, user_id::text AS user_id`,
        [familyHash, presented, sha256(next), ttl],
      );
      const row = rotated.rows[0];
      if (row) return { outcome: 'rotated', userId: row.user_id, sessionId: row.session_id, refreshToken: `${m[1]}.${next}` };
      // Not the current secret of a live session: an earlier token of this family means reuse.
      const reused = await db.query<{ session_id: string; user_id: string }>(
        `UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'refresh_token_reused'
         WHERE family_hash = $1 AND refresh_hash <> $2 AND revoked_at IS NULL
         RETURNING session_id::text AS session_id, user_id::text AS user_id`,
        [familyHash, presented],
      );
      const hit = reused.rows[0];
      return hit ? { outcome: 'reused', userId: hit.user_id, sessionId: hit.session_id } : { outcome: 'invalid' };
    },

    async revoke(userId: string, sessionId: string, reason: string): Promise<boolean> {
      if (!CANONICAL_UUID.test(userId) || !CANONICAL_UUID.test(sessionId)) return false;
      const { rows } = await db.query(
        `UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $3
         WHERE session_id = $2::uuid AND user_id = $1::uuid AND revoked_at IS NULL RETURNING session_id`,
        [userId, sessionId, reason],
      );
      return rows.length > 0;
    },

    async revokeAll(userId: string, reason: string, keep?: string): Promise<string[]> {
      if (!CANONICAL_UUID.test(userId)) return [];
      const { rows } = await db.query<{ session_id: string }>(
        `UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $2
         WHERE user_id = $1::uuid AND revoked_at IS NULL AND ($3::uuid IS NULL OR session_id <> $3::uuid)
         RETURNING session_id::text AS session_id`,
        [userId, reason, keep !== undefined && CANONICAL_UUID.test(keep) ? keep : null],
      );
      return rows.map((r) => r.session_id);
    },

    async status(ref: SessionRef): Promise<SessionStatus> {
      if (!CANONICAL_UUID.test(ref.userId) || !CANONICAL_UUID.test(ref.sessionId)) return 'unknown';
      const { rows } = await db.query<StatusRow>(
        `SELECT $2::text AS session_id, ${STATUS_COLUMNS}
         FROM users u LEFT JOIN auth_sessions s ON s.session_id = $2::uuid AND s.user_id = u.user_id
         WHERE u.user_id = $1::uuid`,
        [ref.userId, ref.sessionId],
      );
      return statusOf(rows[0], ref.tokenVersion);
    },

    async statuses(refs: readonly SessionRef[]): Promise<SessionStatus[]> {
      const valid = refs.filter((r) => CANONICAL_UUID.test(r.userId) && CANONICAL_UUID.test(r.sessionId));
      if (valid.length === 0) return refs.map(() => 'unknown');
      const { rows } = await db.query<StatusRow>(
        `SELECT c.sid::text AS session_id, ${STATUS_COLUMNS}
         FROM unnest($1::uuid[], $2::uuid[]) AS c (sid, uid)
         LEFT JOIN users u ON u.user_id = c.uid
         LEFT JOIN auth_sessions s ON s.session_id = c.sid AND s.user_id = c.uid`,
        [valid.map((r) => r.sessionId), valid.map((r) => r.userId)],
      );
      const bySession = new Map(rows.map((row) => [row.session_id, row]));
      return refs.map((r) => statusOf(bySession.get(r.sessionId), r.tokenVersion));
    },

    async prune(before: Date): Promise<number> {
      const { rows } = await db.query('DELETE FROM auth_sessions WHERE revoked_at < $1 OR expires_at < $1 RETURNING session_id', [before.toISOString()]);
      return rows.length;
    },
  };
}
