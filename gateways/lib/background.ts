import { backoffDelay, resolveRetry, sleep, type RetryPolicy } from '../../infra/bus/retry.js';

/**
 * A long-running part (`run(signal)`, centrifuge's habit) as a background task: `start` runs it
 * until `stop` aborts its signal and waits for it to settle. A failure that ends it (its
 * dependency was unreachable when it set itself up, say) is reported to `onFailure`, never thrown
 * at the caller, and `run` starts again after a back-off (`retry`, default 1 s doubling up to
 * 30 s): a part never stays dead while the process lives.
 */
export function background(run: (signal: AbortSignal) => Promise<void>, onFailure: (error: unknown) => void, retry?: RetryPolicy) {
  const policy = resolveRetry(retry, { initialMs: 1_000, maxMs: 30_000 });
  let controller: AbortController | undefined;
  let running: Promise<void> | undefined;
  return {
    start(): void {
      if (running) return;
      const c = (controller = new AbortController());
      running = (async () => {
        for (let failures = 1; !c.signal.aborted; failures++) {
          try {
            await run(c.signal);
            return; // ended by itself (stopped, or its bus closed)
          } catch (error) {
            if (c.signal.aborted) return;
            onFailure(error);
            await sleep(backoffDelay(failures, policy), c.signal);
          }
        }
      })();
    },
    async stop(): Promise<void> {
      controller?.abort();
      await running;
      running = undefined;
    },
  };
}
