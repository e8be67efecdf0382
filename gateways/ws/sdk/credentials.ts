import { z } from 'zod';
import { ChatHttpError, type restClient, type Session } from './rest.js';

/**
 * The SDK's access token (issue 18: access tokens live 15 minutes): keeps the refresh token of the
 * session, refreshes the access token before a connection when it expires within
 * REFRESH_MARGIN_MS or after the server said it expired (close 4004, or Hello refused with reason
 * `token_expired`), and logs in again with `{username, password}` when there is no refresh token or
 * it is refused. One refresh at a time: concurrent callers share it. A token or refresh token
 * that is refused for good (401/403, wrong credentials) is `LoginRefused`: the client stops.
 */

/** A token is renewed before a connection when it expires within this (or within a quarter of its lifetime, if shorter). */
export const REFRESH_MARGIN_MS = 30_000;

/** What the server answered last, for applications that keep the session across restarts. */
export type SessionTokens = { token: string; refreshToken: string | null; expiresAtMs: number | null };

export class LoginRefused extends Error {}

const Payload = z.looseObject({ exp: z.number(), iat: z.number().optional() });

function claimsOf(token: string): z.infer<typeof Payload> | null {
  const part = token.split('.')[1];
  if (part === undefined) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const parsed = Payload.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The `exp` of a JWT in milliseconds, or null when the token is not a JWT the SDK can read. */
export function expiryOf(token: string): number | null {
  const claims = claimsOf(token);
  return claims === null ? null : claims.exp * 1000;
}

export interface TokenKeeper {
  /** A token to connect with: refreshed or obtained by logging in when needed. */
  current(): Promise<string>;
  /** The server refused or expired the current token: the next `current()` gets a new one. */
  expired(): void;
  /** Whether a new token can be had without the application (a refresh token or credentials). */
  canRenew(): boolean;
  userId(): string | null;
}

export function createTokenKeeper(options: {
  rest: ReturnType<typeof restClient>;
  token: string | null;
  refreshToken: string | null;
  credentials: { username: string; password: string } | null;
  clock: () => number;
  onTokens?: (tokens: SessionTokens) => void;
}): TokenKeeper {
  let token = options.token;
  let refreshToken = options.refreshToken;
  let stale = false;
  let userId: string | null = null;
  let renewing: Promise<string> | null = null;
  const { rest, credentials } = options;

  const refusedForGood = (error: unknown) => error instanceof ChatHttpError && error.status >= 400 && error.status < 500 && error.status !== 429;

  function adopt(session: Session): string {
    token = session.token;
    refreshToken = session.refresh_token ?? refreshToken;
    userId = session.user_id;
    stale = false;
    const expiresAtMs = session.expires_in === undefined ? expiryOf(session.token) : options.clock() + session.expires_in * 1000;
    try {
      options.onTokens?.({ token: session.token, refreshToken, expiresAtMs });
    } catch {
      // the application's callback is its own business
    }
    return session.token;
  }

  async function renew(): Promise<string> {
    if (refreshToken !== null) {
      try {
        return adopt(await rest.refresh(refreshToken));
      } catch (error) {
        if (!refusedForGood(error)) throw error; // the network or the server: retried by the caller's back-off
        refreshToken = null;
      }
    }
    if (credentials === null) throw new LoginRefused('the session has ended and there are no credentials to log in again');
    try {
      return adopt(await rest.login(credentials.username, credentials.password));
    } catch (error) {
      // wrong credentials will not get better by retrying
      if (refusedForGood(error)) throw new LoginRefused(error instanceof Error ? error.message : String(error));
      throw error;
    }
  }

  const canRenew = () => refreshToken !== null || credentials !== null;
  const nearExpiry = (t: string) => {
    const claims = claimsOf(t);
    if (claims === null) return false;
    const margin = claims.iat === undefined ? REFRESH_MARGIN_MS : Math.min(REFRESH_MARGIN_MS, ((claims.exp - claims.iat) * 1000) / 4);
    return claims.exp * 1000 - options.clock() < margin;
  };

  return {
    async current() {
      // Without a refresh token or credentials the token is used as it is: the server decides.
      if (token !== null && (!canRenew() || (!stale && !nearExpiry(token)))) return token;
      if (!canRenew()) throw new LoginRefused('no token and no credentials');
      renewing ??= renew().finally(() => {
        renewing = null;
      });
      return renewing;
    },
    expired() {
      stale = true;
    },
    canRenew,
    userId: () => userId,
  };
}
