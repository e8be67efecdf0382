import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { AUTH_MESSAGES, AuthError } from './errors.js';
import { CANONICAL_UUID } from '../../domain/fields.js';

/**
 * Access tokens: HS256 JWTs signed with the server's secret (jose), short-lived (JWT_TTL_SECONDS,
 * 15 minutes by default). Claims: `sub` (user id), `sid` (the login session), `ver` (the account's
 * token version when it was issued), `username`, `iat`, `exp`. A valid signature and expiry are
 * only the first half of the check: access.ts then asks the database whether the account, its
 * token version and the session still stand.
 */

export const TOKEN_ALGORITHM = 'HS256';

export type AccessClaims = { userId: string; username: string; sessionId: string; tokenVersion: number; expiresAtMs: number };

export type TokenSubject = { userId: string; username: string; sessionId: string; tokenVersion: number };

export interface TokenService {
  readonly ttlSeconds: number;
  issue(subject: TokenSubject): Promise<string>;
  /** Signature and expiry only; throws AuthError `invalid` or `expired`. */
  decode(token: string): Promise<AccessClaims>;
}

const Uuid = z.string().regex(CANONICAL_UUID);
const Claims = z.object({
  sub: Uuid,
  sid: Uuid,
  ver: z.number().int().min(0),
  username: z.string().min(1).max(64),
  exp: z.number(),
});

export function createTokenService(options: { secret: string; ttlSeconds: number }): TokenService {
  const key = new TextEncoder().encode(options.secret);
  return {
    ttlSeconds: options.ttlSeconds,
    issue: (subject) =>
      new SignJWT({ username: subject.username, sid: subject.sessionId, ver: subject.tokenVersion })
        .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: 'JWT' })
        .setSubject(subject.userId)
        .setIssuedAt()
        .setExpirationTime(`${options.ttlSeconds}s`)
        .sign(key),
    async decode(token) {
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, key, { algorithms: [TOKEN_ALGORITHM], requiredClaims: ['sub', 'exp'] }));
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw new AuthError('expired', AUTH_MESSAGES.expired);
        throw new AuthError('invalid', AUTH_MESSAGES.invalid);
      }
      // Tokens of before sessions (no sid / ver) are refused: their holders log in again.
      const claims = Claims.safeParse(payload);
      if (!claims.success) throw new AuthError('invalid', AUTH_MESSAGES.invalid);
      const c = claims.data;
      return { userId: c.sub, username: c.username, sessionId: c.sid, tokenVersion: c.ver, expiresAtMs: c.exp * 1000 };
    },
  };
}
