/**
 * Dependency health: what a process knows about the services it depends on (PostgreSQL, NATS,
 * Redis, the object store). Every role feeds it: each adapter reports what it sees (a call that
 * worked: up; a failure that means the service cannot be reached: down), and the module keeps one
 * state per dependency, logs one line when a dependency goes down and one when it is back, and
 * answers readiness (`GET /readyz` on the api role).
 *
 * Guarantees:
 * - `up()` is cheap enough for every successful call (a comparison when nothing changed).
 * - A state changes only on a report (or a probe's outcome); a dependency never reported is up.
 * - Adapters turn a failure that means "the service is unreachable" into a
 *   DependencyUnavailableError (below), so callers can answer "retry later" (REST 503, a
 *   retryable WebSocket Error) instead of "internal error", and log it quietly: the outage itself
 *   is logged once, here.
 */

export type DependencyState = {
  name: string;
  up: boolean;
  /** When the state last changed (ISO 8601); the process start for a dependency never down. */
  since: string;
  /** Why it is down (the last failure's message), null while up. */
  reason: string | null;
};

/** What an adapter reports about its dependency. */
export interface DependencyReporter {
  /** A call worked: the dependency is reachable. */
  up(): void;
  /** A call failed in a way that means the dependency cannot be reached. */
  down(error: unknown): void;
}

export interface DependencyHealth {
  /**
   * A dependency this process uses (named once: a second registration of the name returns the same
   * reporter). `probe` checks it actively (a `select 1`, a PING, a flush) for readiness checks; it
   * rejects when the dependency is unreachable.
   */
  register(name: string, probe?: () => Promise<void>): DependencyReporter;
  /** Every registered dependency, in registration order. */
  states(): DependencyState[];
  /** True when every registered dependency is up. */
  ready(): boolean;
  /**
   * Runs every probe (each bounded by a timeout), feeds its outcome as a report, and returns the
   * states. Calls within a short interval (100 ms) share one run, so a readiness endpoint polled
   * hard costs the dependencies at most ten probes a second.
   */
  check(): Promise<DependencyState[]>;
}

/** What adapters are given: they register their dependency (with a probe) and report into it. */
export type DependencyRegistry = Pick<DependencyHealth, 'register'>;

/**
 * A dependency could not be reached: the operation may succeed later, unchanged. Adapters throw it
 * (with the driver's error as `cause`) for connection failures, never for a refusal of the request
 * itself (a constraint violation, a missing object).
 */
export class DependencyUnavailableError extends Error {
  override readonly name = 'DependencyUnavailableError';
  constructor(
    /** The dependency's name as registered (e.g. "postgresql shard 0", "redis"). */
    readonly dependency: string,
    options: { cause?: unknown; message?: string } = {},
  ) {
    super(options.message ?? `${dependency} is unavailable${causeText(options.cause)}`, { cause: options.cause });
  }
}

function causeText(cause: unknown): string {
  if (cause instanceof Error && cause.message !== '') return `: ${cause.message}`;
  return '';
}

/** A reporter that reports nowhere (adapters built without a health module: tools, tests). */
export const unreported: DependencyReporter = Object.freeze({ up() {}, down() {} });

/**
 * True when `error` (or an error it wraps as `cause`) is a DependencyUnavailableError: an outage,
 * logged once by the dependency's health, so a loop that retries it logs it quietly.
 */
export function isOutage(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof DependencyUnavailableError) return true;
  }
  return false;
}
