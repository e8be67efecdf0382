import type { FastifyRequest, onRequestAsyncHookHandler, preParsingAsyncHookHandler } from 'fastify';
import type { AccessVerifier, AuthUser } from '../auth/access.js';
import { AUTH_MESSAGES, AuthError, type AuthFailure } from '../auth/errors.js';
import { HttpError, UNAVAILABLE_RETRY_AFTER_SECONDS } from './errors.js';
import type { FailureLimit } from './failure-limit.js';

/**
 * Authentication of the bearer-token routes, in two hooks around the rate limit:
 *
 * 1. `identify` (onRequest, the scope's): checks the token (gateways/auth/access.ts) and sets
 *    `request.user`, or remembers why it failed; it never answers by itself;
 * 2. the rate limit (a route-level onRequest hook, so it runs next) counts the request against
 *    the user, or against the client address when there is no valid token;
 * 3. `requireUser` (preParsing: before any body is read) answers a request without a valid token:
 *    401 (missing, malformed, forged, expired, revoked), 403 `account_disabled`, or 503
 *    `service_unavailable` with Retry-After when the database could not be asked (never 401: clients
 *    take 401 as "log in again"). Malformed and forged tokens also count as failures of the
 *    address (failure-limit.ts), which answers 429 once it has too many.
 */

export type { AuthUser } from '../auth/access.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `identify` on every protected route. */
    user: AuthUser | null;
    /** Why the bearer token was refused (set by `identify`, answered by `requireUser`). */
    authFailure: AuthError | null;
  }
}

const BEARER = /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i;

/** onRequest hook: authenticates the caller, or remembers why not. */
export function identify(verifier: AccessVerifier): onRequestAsyncHookHandler {
  return async (request) => {
    const header = request.headers.authorization;
    if (header === undefined) {
      request.authFailure = new AuthError('missing', 'Authorization: missing; send "Authorization: Bearer <token>"');
      return;
    }
    const match = BEARER.exec(header);
    if (!match) {
      request.authFailure = new AuthError('invalid', 'Authorization: expected "Bearer <token>"');
      return;
    }
    try {
      request.user = await verifier.verify(match[1]!);
    } catch (error) {
      request.authFailure = error instanceof AuthError ? error : new AuthError('unavailable', AUTH_MESSAGES.unavailable);
      if (!(error instanceof AuthError)) request.log.error({ err: error }, 'access token check failed');
    }
  };
}

const COUNTED_FAILURES: ReadonlySet<AuthFailure> = new Set(['invalid']);

/** preParsing hook: answers requests `identify` did not authenticate. */
export function requireUser(failures: FailureLimit): preParsingAsyncHookHandler {
  return async (request) => {
    const failure = request.authFailure;
    if (request.user !== null) return;
    if (failure === null) throw new HttpError('unauthorized', 'authentication required');
    if (COUNTED_FAILURES.has(failure.failure)) {
      await failures.check(request);
      await failures.record(request);
    }
    throw toHttpError(failure);
  };
}

export function toHttpError(error: AuthError): HttpError {
  switch (error.failure) {
    case 'disabled':
      return new HttpError('account_disabled', error.message);
    case 'unavailable':
      return new HttpError('service_unavailable', error.message, UNAVAILABLE_RETRY_AFTER_SECONDS);
    case 'missing':
    case 'invalid':
    case 'expired':
    case 'revoked':
      return new HttpError('unauthorized', error.message);
    default: {
      const unreachable: never = error.failure;
      return unreachable;
    }
  }
}

/** The authenticated caller of a protected route. */
export function caller(request: FastifyRequest): AuthUser {
  if (request.user === null) throw new HttpError('unauthorized', 'authentication required');
  return request.user;
}
