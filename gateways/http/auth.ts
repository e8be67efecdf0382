import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { HttpError } from './errors.js';

/**
 * Access tokens: HS256 JWTs signed with the server's secret, `sub` = user id, with an expiry.
 * Every route but register / login requires `Authorization: Bearer <token>`.
 */

/** expiresAtMs: when the token stops being valid (a WebSocket session ends then, close 4004). */
export type AuthUser = { userId: string; username: string; expiresAtMs?: number };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on every protected route. */
    user: AuthUser | null;
  }
}

export const TOKEN_ALGORITHM = 'HS256';

const Claims = z.object({ sub: z.string().min(1).max(64), username: z.string().min(1).max(64), exp: z.number() });

export type TokenService = {
  issue(user: { user_id: string; username: string }): Promise<string>;
  /** The token's user; throws HttpError 401 for a missing, malformed, forged or expired token. */
  verify(token: string): Promise<AuthUser>;
  readonly ttlSeconds: number;
};

export function createTokenService(options: { secret: string; ttlSeconds: number }): TokenService {
  const key = new TextEncoder().encode(options.secret);
  return {
    ttlSeconds: options.ttlSeconds,
    issue: (user) =>
      new SignJWT({ username: user.username })
        .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: 'JWT' })
        .setSubject(user.user_id)
        .setIssuedAt()
        .setExpirationTime(`${options.ttlSeconds}s`)
        .sign(key),
    async verify(token) {
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, key, { algorithms: [TOKEN_ALGORITHM], requiredClaims: ['sub', 'exp'] }));
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw new HttpError('unauthorized', 'the access token has expired; log in again');
        throw new HttpError('unauthorized', 'the access token is not valid');
      }
      const claims = Claims.safeParse(payload);
      if (!claims.success) throw new HttpError('unauthorized', 'the access token is not valid');
      return { userId: claims.data.sub, username: claims.data.username, expiresAtMs: claims.data.exp * 1000 };
    },
  };
}

const BEARER = /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i;

/** onRequest hook: authenticates the caller or replies 401. */
export function authenticate(tokens: TokenService): onRequestAsyncHookHandler {
  return async (request) => {
    const header = request.headers.authorization;
    if (header === undefined) throw new HttpError('unauthorized', 'Authorization: missing; send "Authorization: Bearer <token>"');
    const match = BEARER.exec(header);
    if (!match) throw new HttpError('unauthorized', 'Authorization: expected "Bearer <token>"');
    request.user = await tokens.verify(match[1]!);
  };
}

/** The authenticated caller of a protected route. */
export function caller(request: FastifyRequest): AuthUser {
  if (request.user === null) throw new HttpError('unauthorized', 'authentication required');
  return request.user;
}
