import type { Platform } from './push-provider.js';

/**
 * Devices that receive push notifications: one row per registration token.
 *
 * Guarantees (sql.int.spec.ts checks them on PGlite and PostgreSQL):
 * - A token belongs to at most one user, and to the login session that registered it:
 *   registering a token another user holds is refused (`null`: the route answers 409) while that
 *   user's session is live; once it ended (logged out, revoked, expired) the token is free and
 *   moves to the registering user, keeping its device id. Rows from before sessions (no session)
 *   stay with their user until removed. Registering one's own token again binds it to the current
 *   session and changes the platform and `updated_at` (`created: false`).
 * - A session holds one token (one logged-in app install has one): registering a token through a
 *   session replaces the token it held before (FCM rotates tokens), so a user's tokens are bounded
 *   by their live sessions (MAX_SESSIONS_PER_USER) plus rows from before sessions.
 * - Ending a session releases its tokens (`releaseSession`, `releaseAllBut`), and `listForUsers`
 *   (what push sends to) leaves out tokens whose session is no longer live: a phone logged out of
 *   stops getting notifications.
 * - `remove` deletes one device of the given user only, named by device id or by token.
 * - `removeTokens` deletes tokens whoever holds them (the provider said they are dead).
 */
export type Device = {
  device_id: string;
  user_id: string;
  platform: Platform;
  token: string;
  created_at: string;
  updated_at: string;
};

export type Registration = {
  device: Device;
  /** false when this user already held this token. */
  created: boolean;
};

/** Who registers: the user and the login session of their access token (null: none, tests of old rows). */
export type DeviceOwner = { userId: string; sessionId: string | null };

export interface DeviceRegistry {
  /** Needs the users and auth_sessions tables (it reads session liveness). */
  ensureSchema(): Promise<void>;
  /** null: another user holds this token through a live session. */
  register(owner: DeviceOwner, platform: Platform, token: string): Promise<Registration | null>;
  /** Deletes the user's device whose device_id or token is `idOrToken`; false when the user has none such. */
  remove(userId: string, idOrToken: string): Promise<boolean>;
  /** The devices of one user, oldest first. */
  list(userId: string): Promise<Device[]>;
  /** The devices of several users (for sending). */
  listForUsers(userIds: string[]): Promise<Device[]>;
  /** Deletes these tokens (reported unregistered); returns how many rows went. */
  removeTokens(tokens: string[]): Promise<number>;
  /** Deletes the user's devices registered through this session (logout); how many went. */
  releaseSession(userId: string, sessionId: string): Promise<number>;
  /** Deletes every device of the user except those of session `keep` (logout-all: null; password change: the current one). */
  releaseAllBut(userId: string, keep: string | null): Promise<number>;
}
