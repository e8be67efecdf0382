/**
 * Every running role (ROLES: api, gateway, projector, relay, delivery, push) has a folder with a
 * `start(deps, signal)` entry (its `start.ts`). `start` sets the role up and starts it, and
 * resolves once it runs; when `signal` aborts, the role stops, and `stopped` settles once it has
 * (its own resources released: the adapters it was handed belong to the caller, who closes them
 * after every role on them has stopped).
 */
export interface Running {
  readonly stopped: Promise<void>;
}

/** Runs `stop` once `signal` aborts; the promise settles when it has (rejects if it threw). */
export function stopOn(signal: AbortSignal, stop: () => Promise<unknown> | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const go = () => {
      Promise.resolve()
        .then(stop)
        .then(() => resolve(), reject);
    };
    if (signal.aborted) go();
    else signal.addEventListener('abort', go, { once: true });
  });
}
