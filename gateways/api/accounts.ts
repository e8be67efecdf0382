import type { Logger } from 'pino';
import type { DeviceRegistry } from '../ports/devices.js';
import type { LoginThrottle } from '../ports/login-throttle.js';
import type { SessionStore } from '../ports/sessions.js';
import { passwordProblem } from '../../infra/users/password-policy.js';
import type { NewUser, UserRecord, UserRepository } from '../ports/users.js';
import type { AuthUser } from '../auth/access.js';
import type { TokenService } from '../auth/tokens.js';
import { HttpError } from './errors.js';

/**
 * Accounts and their login sessions: what the /api/v1/auth routes do.
 *
 * - register / login start a session: an access token (short-lived JWT naming the session and the
 *   account's token version) and an opaque refresh token (infra/sessions);
 * - refresh rotates the refresh token; a rotated one presented again revokes its session;
 * - logout ends this session, logout-all every session (and moves the token version on), a
 *   password change every other session; ending a session releases its push tokens;
 * - login is throttled per account (infra/login-throttle) before the password is even checked,
 *   so a locked account answers 429 whether the password is right or not.
 */

export type AuthSession = { user_id: string; username: string; token: string; refresh_token: string; expires_in: number };
export type RenewedAccess = { user_id: string; username: string; token: string; expires_in: number };

export interface AccountService {
  register(input: NewUser): Promise<AuthSession>;
  login(login: string, password: string): Promise<AuthSession>;
  /** A new session of an existing user (what register and login end with; tests use it). */
  openSession(userId: string): Promise<AuthSession>;
  refresh(refreshToken: string): Promise<AuthSession>;
  logout(user: AuthUser): Promise<void>;
  logoutAll(user: AuthUser): Promise<void>;
  /** Checks the current password (throttled like a login); every other session ends; a new access token for this one. */
  changePassword(user: AuthUser, current: string, next: string): Promise<RenewedAccess>;
  /** Operators: a disabled account's tokens and sessions stop working; false when there is no such user. */
  setDisabled(userId: string, disabled: boolean): Promise<boolean>;
}

export type AccountServiceDeps = {
  users: UserRepository;
  sessions: SessionStore;
  throttle: LoginThrottle;
  tokens: Pick<TokenService, 'issue' | 'ttlSeconds'>;
  devices?: Pick<DeviceRegistry, 'releaseSession' | 'releaseAllBut'>;
  passwordMinLength: number;
  logger: Logger;
  /** Called after sessions ended in this process (the gateway here re-checks its connections at once). */
  onSessionsEnded?: () => void;
};

const secondsUntil = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export function createAccountService(deps: AccountServiceDeps): AccountService {
  const { users, sessions, throttle, tokens } = deps;
  const ended = () => {
    try {
      deps.onSessionsEnded?.();
    } catch (error) {
      deps.logger.warn({ err: error }, 'session-end listener failed');
    }
  };

  async function start(record: UserRecord): Promise<AuthSession> {
    const session = await sessions.create(record.user_id);
    if (session.ended.length > 0) {
      // Past the per-user session limit: the least recently used sessions ended with this login.
      for (const sessionId of session.ended) await deps.devices?.releaseSession(record.user_id, sessionId);
      ended();
    }
    const token = await tokens.issue({ userId: record.user_id, username: record.username, sessionId: session.sessionId, tokenVersion: record.token_version });
    return { user_id: record.user_id, username: record.username, token, refresh_token: session.refreshToken, expires_in: tokens.ttlSeconds };
  }

  async function recordOf(userId: string): Promise<UserRecord> {
    const record = await users.findRecordById(userId);
    if (record === null) throw new HttpError('unauthorized', 'this account no longer exists');
    return record;
  }

  function requireSession(user: AuthUser) {
    if (user.session === undefined) throw new HttpError('unauthorized', 'this access token names no session');
    return user.session;
  }

  function refusePassword(field: string, account: { username: string; email: string }, password: string): void {
    const problem = passwordProblem(password, account, deps.passwordMinLength);
    if (problem !== null) throw new HttpError('validation_error', `${field}: ${problem}`);
  }

  /** Takes an attempt of the account's throttle (429 while it is locked). */
  async function attempt(userId: string): Promise<void> {
    const taken = await throttle.begin(userId);
    if (!taken.allowed) {
      throw new HttpError(
        'login_throttled',
        `too many failed attempts for this account; retry in ${secondsUntil(taken.retryAfterMs)} s`,
        secondsUntil(taken.retryAfterMs),
      );
    }
  }

  return {
    async register(input) {
      // The route's schema applied the password policy already (every field's error at once).
      const user = await users.create(input);
      return start(await recordOf(user.user_id));
    },

    async login(login, password) {
      const record = await users.findByLogin(login);
      if (record === null) {
        await users.checkDecoy(password);
        throw new HttpError('invalid_credentials', 'unknown username or email, or wrong password');
      }
      await attempt(record.user_id);
      if (!(await users.checkPassword(record, password))) throw new HttpError('invalid_credentials', 'unknown username or email, or wrong password');
      await throttle.succeeded(record.user_id);
      if (record.disabled_at !== null) throw new HttpError('account_disabled', 'this account is disabled');
      return start(record);
    },

    openSession: async (userId) => start(await recordOf(userId)),

    async refresh(refreshToken) {
      const rotation = await sessions.rotate(refreshToken);
      if (rotation.outcome === 'invalid') throw new HttpError('invalid_refresh_token', 'refresh_token: not valid, expired, or its session has ended; log in again');
      if (rotation.outcome === 'reused') {
        deps.logger.warn({ user_id: rotation.userId, session_id: rotation.sessionId }, 'a rotated refresh token was presented again: session revoked');
        await deps.devices?.releaseSession(rotation.userId, rotation.sessionId);
        ended();
        throw new HttpError('invalid_refresh_token', 'refresh_token: already used; the session has been revoked, log in again');
      }
      const record = await recordOf(rotation.userId);
      if (record.disabled_at !== null) throw new HttpError('account_disabled', 'this account is disabled');
      const token = await tokens.issue({ userId: record.user_id, username: record.username, sessionId: rotation.sessionId, tokenVersion: record.token_version });
      return { user_id: record.user_id, username: record.username, token, refresh_token: rotation.refreshToken, expires_in: tokens.ttlSeconds };
    },

    async logout(user) {
      const session = requireSession(user);
      await sessions.revoke(user.userId, session.sessionId, 'logout');
      await deps.devices?.releaseSession(user.userId, session.sessionId);
      ended();
    },

    async logoutAll(user) {
      await users.bumpTokenVersion(user.userId);
      await sessions.revokeAll(user.userId, 'logout_all');
      await deps.devices?.releaseAllBut(user.userId, null);
      ended();
    },

    async changePassword(user, current, next) {
      const session = requireSession(user);
      const record = await recordOf(user.userId);
      refusePassword('new_password', record, next);
      await attempt(record.user_id);
      if (!(await users.checkPassword(record, current))) throw new HttpError('wrong_password', 'current_password: not your current password');
      await throttle.succeeded(record.user_id);
      const tokenVersion = await users.changePassword(record.user_id, next);
      await sessions.revokeAll(record.user_id, 'password_changed', session.sessionId);
      await deps.devices?.releaseAllBut(record.user_id, session.sessionId);
      ended();
      const token = await tokens.issue({ userId: record.user_id, username: record.username, sessionId: session.sessionId, tokenVersion });
      return { user_id: record.user_id, username: record.username, token, expires_in: tokens.ttlSeconds };
    },

    async setDisabled(userId, disabled) {
      const changed = await users.setDisabled(userId, disabled);
      if (changed && disabled) {
        await sessions.revokeAll(userId, 'account_disabled');
        await deps.devices?.releaseAllBut(userId, null);
        ended();
      }
      return changed;
    },
  };
}
