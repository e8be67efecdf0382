import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

/**
 * Failures per client address: failed logins (wrong password, unknown account, a
 * locked account), refused refresh tokens, wrong current passwords and requests with a malformed
 * or forged access token count against the address; once it has `max` of them in the window,
 * those requests from it are answered 429 `rate_limited` with `Retry-After` before any work
 * (no password hash is computed, no token checked). Requests that succeed are not counted, so
 * users behind the same address who log in fine are not locked out by one who guesses.
 * Counted where the request rate limit is (@fastify/rate-limit's store: Redis when the API
 * processes share one, else memory per process).
 */
export interface FailureLimit {
  /** Throws 429 while the caller's address is over its failure budget. */
  check(request: FastifyRequest): Promise<void>;
  record(request: FastifyRequest): Promise<void>;
  /** Whether this error, answered to the caller, is a failure that counts. */
  counts(error: unknown): boolean;
}

/** Whom a request counts against: its user when it has a valid token, else its client address. */
export const clientKey = (request: FastifyRequest): string => (request.user ? `user:${request.user.userId}` : `ip:${request.ip}`);

const COUNTED: ReadonlySet<string> = new Set(['invalid_credentials', 'login_throttled', 'invalid_refresh_token', 'wrong_password']);

export function createFailureLimit(app: FastifyInstance, settings: { max: number; windowMs: number }): FailureLimit {
  // A store of its own (the plugin gives every limiter made this way a child store), keyed by address.
  // Keys of its own: in Redis the limiters made this way share one key space.
  const limiter = app.createRateLimit({ max: settings.max, timeWindow: settings.windowMs, keyGenerator: (request) => `failures:${clientKey(request)}` });
  return {
    async check(request) {
      const state = await limiter(request, { increment: false });
      if (state.isAllowed || state.remaining > 0) return;
      throw new HttpError(
        'rate_limited',
        `too many failed attempts from this address: at most ${settings.max} per ${settings.windowMs} ms; retry in ${state.ttlInSeconds} s`,
        state.ttlInSeconds,
      );
    },
    async record(request) {
      await limiter(request);
    },
    counts: (error) => error instanceof HttpError && COUNTED.has(error.code),
  };
}

/**
 * The budget of the requests that hash a password (register, login, password change), counted per
 * address (per user for a password change) on top of the general rate limit: an Argon2id hash
 * costs some 25-50 ms of a core and 19 MiB, so a client spending the general budget (600 a minute)
 * in one burst would hold the hashing threads, and everyone else's logins, for seconds. Returns an
 * onRequest hook that answers 429 `rate_limited` with Retry-After once `max` were spent in the window.
 */
export function createHashingLimit(app: FastifyInstance, settings: { max: number; windowMs: number }) {
  // One store for the three routes (a route-level rateLimit config would give each its own).
  const limiter = app.createRateLimit({ max: settings.max, timeWindow: settings.windowMs, keyGenerator: (request) => `hashing:${clientKey(request)}` });
  return async function hashingLimit(request: FastifyRequest): Promise<void> {
    const state = await limiter(request);
    if (state.isAllowed || !state.isExceeded) return;
    throw new HttpError(
      'rate_limited',
      `too many registrations, logins or password changes from here: at most ${settings.max} per ${settings.windowMs} ms; retry in ${state.ttlInSeconds} s`,
      state.ttlInSeconds,
    );
  };
}
