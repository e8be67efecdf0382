/**
 * The per-account login throttle, shared by every API process (it lives in the database).
 *
 * Every password check of an account first takes an attempt (`begin`): refused while the account
 * is locked; otherwise the attempt counts as a failure until `succeeded` clears the count. Counting
 * before checking means parallel guesses cannot slip past the limit: the attempt that reaches
 * `freeAttempts` consecutive failures locks the account for `baseMs`, each further failure doubles
 * that, up to `maxMs`. A count whose last failure is older than a day starts again.
 *
 * Accounts only: logins of unknown usernames are not recorded (the per-address limit of the REST
 * API bounds them), so the table holds at most one row per account.
 */

export type ThrottleSettings = {
  /** Consecutive failures allowed before the first lock. */
  freeAttempts: number;
  baseMs: number;
  maxMs: number;
};

export type Attempt = { allowed: true } | { allowed: false; retryAfterMs: number };

export interface LoginThrottle {
  ensureSchema(): Promise<void>;
  begin(userId: string): Promise<Attempt>;
  succeeded(userId: string): Promise<void>;
}
