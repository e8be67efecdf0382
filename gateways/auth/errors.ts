/**
 * Why a caller is not authenticated: each gateway maps these to its own answer (REST: 401, 403 or
 * 503; WebSocket: an Error frame and a close code).
 */
export type AuthFailure =
  /** no token at all */
  | 'missing'
  /** not a token of this server: malformed, forged, or naming nobody */
  | 'invalid'
  /** past its `exp`: refresh it */
  | 'expired'
  /** its session ended (logout, logout-all, password change, refresh-token reuse) or the account's token version moved on */
  | 'revoked'
  /** the account is disabled */
  | 'disabled'
  /** the check could not be made (database down): retry, do not log in again */
  | 'unavailable';

export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly failure: AuthFailure,
    message: string,
  ) {
    super(message);
  }
}

export const AUTH_MESSAGES: Readonly<Record<AuthFailure, string>> = Object.freeze({
  missing: 'the access token is missing',
  invalid: 'the access token is not valid',
  expired: 'the access token has expired; refresh it (POST /api/v1/auth/refresh) or log in again',
  revoked: 'the session of this access token has ended (logged out or revoked); log in again',
  disabled: 'this account is disabled',
  unavailable: 'the access token could not be checked right now; retry shortly',
});
