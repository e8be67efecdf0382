import type { Logger } from 'pino';
import { isOutage } from '../../domain/ports/health.js';
import type { SessionRef, SessionStatus, SessionStore } from '../ports/sessions.js';
import { AUTH_MESSAGES, AuthError } from './errors.js';
import type { TokenService } from './tokens.js';

/**
 * The whole check of an access token, shared by the REST API and the WebSocket gateway: signature
 * and expiry (tokens.ts), then one primary-key lookup: the account exists and is enabled, its
 * token version is the token's, and the token's session is live. No cache: a logout, a
 * logout-all, a password change or a disabled account is refused by every API process from the
 * next request on. A database error is `unavailable` (REST 503 service_unavailable, WebSocket a
 * retryable error with reason dependency_unavailable, as for any dependency that is down),
 * never "log in again".
 */

/** The authenticated caller. `session` is absent only for stand-ins in tests. */
export type AuthUser = { userId: string; username: string; expiresAtMs?: number; session?: SessionRef };

export interface AccessVerifier {
  /** Throws AuthError. */
  verify(token: string): Promise<AuthUser>;
}

export function createAccessVerifier(deps: { tokens: Pick<TokenService, 'decode'>; sessions: Pick<SessionStore, 'status'>; logger: Logger }): AccessVerifier {
  return {
    async verify(token) {
      if (token.length === 0) throw new AuthError('missing', AUTH_MESSAGES.missing);
      const claims = await deps.tokens.decode(token);
      const session: SessionRef = { userId: claims.userId, sessionId: claims.sessionId, tokenVersion: claims.tokenVersion };
      let status: SessionStatus;
      try {
        status = await deps.sessions.status(session);
      } catch (error) {
        // An outage is logged once by the dependency's health (infra/health), not per request.
        if (!isOutage(error)) deps.logger.warn({ err: error }, 'access token check failed (database)');
        throw new AuthError('unavailable', AUTH_MESSAGES.unavailable);
      }
      switch (status) {
        case 'live':
          return { userId: claims.userId, username: claims.username, expiresAtMs: claims.expiresAtMs, session };
        case 'disabled':
          throw new AuthError('disabled', AUTH_MESSAGES.disabled);
        case 'unknown':
          throw new AuthError('invalid', AUTH_MESSAGES.invalid);
        case 'revoked':
        case 'stale':
        case 'expired':
          throw new AuthError('revoked', AUTH_MESSAGES.revoked);
        default: {
          const unreachable: never = status;
          return unreachable;
        }
      }
    },
  };
}
