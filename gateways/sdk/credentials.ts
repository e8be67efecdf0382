import { z } from 'zod';
import { ChatHttpError, type restClient, type Session } from './rest.js';

/**
 * The SDK's access token (access tokens live 15 minutes): keeps the refresh token of the
 * session, refreshes the access token before a connection when it expires within
 * REFRESH_MARGIN_MS or after the server said it expired (close 4004, or Hello refused with reason
 * `token_expired`), and logs in again with `{username, password}` when there is no refresh token or
 * it is refused. While a connection is open, client.ts renews its token in band: `refresh()` at
 * `timesOf(token).renewAtMs`, then a Reauthenticate frame (PROTOCOL.md, "Renewing the token"). One
 * refresh at a time: concurrent callers share it. A token or refresh token that is refused for
 * good (401/403, wrong credentials) is `LoginRefused`: the client stops.
 */

/** A token is renewed before a connection when it expires within this (or within a quarter of its lifetime, if shorter). */
export const REFRESH_MARGIN_MS = 30_000;

/**
 * An open connection's token is renewed in band at the later of RENEW_BEFORE_EXPIRY_MS before its
 * expiry and RENEW_AT_FRACTION of its lifetime: 14 minutes into a 15-minute token, 3.2 s into a
 * 4-second one (so a short lifetime is not spent renewing).
 */
export const RENEW_BEFORE_EXPIRY_MS = 60_000;
export const RENEW_AT_FRACTION = 0.8;

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
  /**
   * The server refused or expired the current token: the next `current()` gets a new one. With
   * `token`, only when that is still the current token (one renewed meanwhile is kept).
   */
  expired(token?: string): void;
  /** Whether a new token can be had without the application (a refresh token or credentials). */
  canRenew(): boolean;
  /** Whether there is a refresh token: an open connection's token can then be renewed in band. */
  canRefresh(): boolean;
  /**
   * A new access token of the same session, from the refresh token (never by logging in: a new
   * login is a new session, which a connection does not take). Shares a renewal under way. The
   * refresh token refused for good: `LoginRefused` (and it is dropped: the next `current()` logs
   * in again, or stops the client, as after a close 4004).
   */
  refresh(): Promise<string>;
  /**
   * When (local clock) `token` expires, and when an open connection should renew it in band: the
   * later of RENEW_BEFORE_EXPIRY_MS before its expiry and RENEW_AT_FRACTION of its lifetime. The
   * expiry is the earlier of the JWT's `exp` moved by `serverOffsetMs` (server clock minus local
   * clock, e.g. from Welcome.server_time_ms) and, for a token this keeper obtained, the reply's
   * `expires_in` from its arrival. null: a token whose expiry the SDK cannot read (the server decides).
   */
  timesOf(token: string, serverOffsetMs?: number): { expiresAtMs: number; renewAtMs: number } | null;
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
  /** The tokens this keeper obtained, with their lifetime from `expires_in` (local clock). */
  const issued = new Map<string, { receivedAtMs: number; expiresAtMs: number }>();
  const { rest, credentials } = options;

  const refusedForGood = (error: unknown) => error instanceof ChatHttpError && error.status >= 400 && error.status < 500 && error.status !== 429;

  function adopt(session: Session): string {
    token = session.token;
    refreshToken = session.refresh_token ?? refreshToken;
    userId = session.user_id;
    stale = false;
    const expiresAtMs = session.expires_in === undefined ? expiryOf(session.token) : options.clock() + session.expires_in * 1000;
    issued.clear(); // only the current token is ever asked about
    if (session.expires_in !== undefined && expiresAtMs !== null) issued.set(session.token, { receivedAtMs: options.clock(), expiresAtMs });
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

  /** Whether the renewal under way is an in-band refresh (which never logs in). */
  let refreshingOnly = false;
  const share = (work: () => Promise<string>): Promise<string> => {
    if (renewing === null) {
      refreshingOnly = work === refreshOnly;
      renewing = work().finally(() => {
        renewing = null;
      });
    }
    return renewing;
  };

  async function refreshOnly(): Promise<string> {
    if (refreshToken === null) throw new LoginRefused('no refresh token');
    try {
      return adopt(await rest.refresh(refreshToken));
    } catch (error) {
      if (!refusedForGood(error)) throw error; // the network or the server: the caller retries
      refreshToken = null;
      throw new LoginRefused(error instanceof Error ? error.message : String(error));
    }
  }

  return {
    async current() {
      // Without a refresh token or credentials the token is used as it is: the server decides.
      if (token !== null && (!canRenew() || (!stale && !nearExpiry(token)))) return token;
      if (!canRenew()) throw new LoginRefused('no token and no credentials');
      if (renewing !== null && refreshingOnly) {
        // An in-band refresh is under way: its token will do; if its refresh token is refused, log in as renew() would.
        try {
          return await renewing;
        } catch (error) {
          if (!(error instanceof LoginRefused) || !canRenew()) throw error;
        }
      }
      return share(renew);
    },
    expired(expiredToken) {
      if (expiredToken === undefined || expiredToken === token) stale = true;
    },
    canRenew,
    canRefresh: () => refreshToken !== null,
    refresh: () => share(refreshOnly),
    timesOf(t, serverOffsetMs = 0) {
      const known = issued.get(t);
      const claims = claimsOf(t);
      if (known === undefined && claims === null) return null;
      // The earlier of the two estimates: `exp` is the server's own (whole seconds, so up to 1 s
      // earlier than issue time plus the lifetime), `expires_in` counts from the reply's arrival.
      const expiresAtMs = Math.min(claims === null ? Infinity : claims.exp * 1000 - serverOffsetMs, known?.expiresAtMs ?? Infinity);
      const lifetimeMs =
        claims?.iat !== undefined ? (claims.exp - claims.iat) * 1000 : known !== undefined ? known.expiresAtMs - known.receivedAtMs : null;
      const beforeExpiry = expiresAtMs - RENEW_BEFORE_EXPIRY_MS;
      return { expiresAtMs, renewAtMs: lifetimeMs === null ? beforeExpiry : Math.max(beforeExpiry, expiresAtMs - (1 - RENEW_AT_FRACTION) * lifetimeMs) };
    },
    userId: () => userId,
  };
}
