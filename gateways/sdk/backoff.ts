/**
 * Reconnect delays: exponential back-off with "equal jitter" (half fixed, half random), capped.
 * Attempt 0 waits between minMs/2 and minMs; each further attempt doubles the ceiling up to maxMs.
 */
export type BackoffOptions = { minMs: number; maxMs: number };

export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.minMs * 2 ** Math.min(attempt, 30));
  const half = ceiling / 2;
  return Math.round(half + random() * half);
}
