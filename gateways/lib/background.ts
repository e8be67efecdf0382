/**
 * A long-running part (`run(signal)`, centrifuge's habit) as a background task: `start` runs it
 * until `stop` aborts its signal and waits for it to settle. A failure that ends it is reported to
 * `onStopped`, never thrown at the caller.
 */
export function background(run: (signal: AbortSignal) => Promise<void>, onStopped: (error: unknown) => void) {
  let controller: AbortController | undefined;
  let running: Promise<void> | undefined;
  return {
    start(): void {
      if (running) return;
      controller = new AbortController();
      running = run(controller.signal).catch(onStopped);
    },
    async stop(): Promise<void> {
      controller?.abort();
      await running;
      running = undefined;
    },
  };
}
