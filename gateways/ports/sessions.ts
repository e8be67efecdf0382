/**
 * Login sessions: one row per login (per device that logged in), holding the hash of its current
 * refresh token. Access tokens name their session (`sid`), so revoking a session ends its access
 * tokens at once, and `status` answers whether a token's session, account and token version still
 * stand (one primary-key lookup).
 *
 * Refresh tokens are opaque: `<family>.<secret>`, two random parts of which only SHA-256 hashes
 * are stored. `family` stays the same for the session's whole life; `secret` changes on every
 * rotation. A token whose family is known but whose secret is not the current one can only be a
 * token of this session that was already rotated (nobody else ever saw the family): it is reuse
 * (a stolen token, or a client that lost a reply) and revokes the session.
 *
 * Guarantees (sql.int.spec.ts checks them on PGlite and PostgreSQL):
 * - `rotate` is atomic: of two concurrent rotations of the same token, one wins and the other is
 *   reuse; a revoked or expired session never rotates.
 * - A session expires `refreshTtlSeconds` after its last rotation (sliding), and never rotates
 *   after that.
 * - Rows of sessions that ended more than a day ago are removed by `prune`.
 */

export type SessionStatus =
  | 'live'
  /** logged out, revoked by logout-all / a password change, or refresh-token reuse */
  | 'revoked'
  /** past its expiry (no refresh within the refresh-token lifetime) */
  | 'expired'
  /** the account's token version moved on since the token was issued */
  | 'stale'
  | 'disabled'
  /** no such user, or no such session of that user */
  | 'unknown';

export type SessionRef = { userId: string; sessionId: string; tokenVersion: number };

/** `ended`: live sessions of the user that this one pushed past the per-user limit (the least recently used ones), now revoked. */
export type NewSession = { sessionId: string; refreshToken: string; expiresAt: Date; ended: string[] };

export type Rotation =
  | { outcome: 'rotated'; userId: string; sessionId: string; refreshToken: string }
  /** the token was already rotated: the session is now revoked */
  | { outcome: 'reused'; userId: string; sessionId: string }
  /** unknown, malformed, or its session revoked or expired */
  | { outcome: 'invalid' };

export interface SessionStore {
  ensureSchema(): Promise<void>;
  /**
   * Starts a session of `userId`; its refresh token is returned once and stored hashed. A user
   * holds at most the store's `maxLivePerUser` live sessions: the least recently used ones past it
   * are revoked (reason `session_limit`), so logging in without end cannot grow the table (or the
   * user's push devices, one per session) without bound.
   */
  create(userId: string): Promise<NewSession>;
  /** Exchanges a refresh token for the next one of its session. */
  rotate(refreshToken: string): Promise<Rotation>;
  /** Revokes one session of the user; false when it was not live. */
  revoke(userId: string, sessionId: string, reason: string): Promise<boolean>;
  /** Revokes every live session of the user except `keep`; the revoked session ids. */
  revokeAll(userId: string, reason: string, keep?: string): Promise<string[]>;
  status(ref: SessionRef): Promise<SessionStatus>;
  /** Statuses of many sessions in one query, in the order of `refs` (gateways re-check their connections with it). */
  statuses(refs: readonly SessionRef[]): Promise<SessionStatus[]>;
  /** Removes rows of sessions that ended (revoked or expired) before `before`; how many went. */
  prune(before: Date): Promise<number>;
}
