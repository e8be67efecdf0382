/** Capped exponential back-off shared by the bus adapters and the relay. */
export type RetryPolicy = {
  /** Delay after the first failure (default 200 ms). */
  initialMs?: number;
  /** Upper bound of any delay (default 30 s). */
  maxMs?: number;
};

export type ResolvedRetryPolicy = Readonly<Required<RetryPolicy>>;

export function resolveRetry(policy: RetryPolicy = {}, defaults: Required<RetryPolicy> = { initialMs: 200, maxMs: 30_000 }): ResolvedRetryPolicy {
  const initialMs = policy.initialMs ?? defaults.initialMs;
  const maxMs = policy.maxMs ?? defaults.maxMs;
  if (!(Number.isFinite(initialMs) && initialMs >= 0)) throw new RangeError(`retry initialMs must be >= 0, got ${initialMs}`);
  if (!(Number.isFinite(maxMs) && maxMs >= initialMs)) throw new RangeError(`retry maxMs must be >= initialMs, got ${maxMs}`);
  return Object.freeze({ initialMs, maxMs });
}

/** The delay before attempt `failures + 1`: initial * 2^(failures-1), capped, with +-20 % jitter so retries spread. */
export function backoffDelay(failures: number, policy: ResolvedRetryPolicy): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 30);
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  return Math.round(Math.min(policy.maxMs, base * (0.8 + Math.random() * 0.4)));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A signal that aborts when any of the given signals aborts. */
export function anySignal(signals: (AbortSignal | undefined)[]): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return present.length === 1 ? present[0]! : AbortSignal.any(present);
}
