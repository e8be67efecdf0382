import { describe, expect, it } from 'vitest';
import { background } from './background.js';

describe('background task', () => {
  it('starts a run that failed again after a back-off, until it runs; stop() ends it', async () => {
    const failures: unknown[] = [];
    let runs = 0;
    let stoppedCleanly = false;
    const task = background(
      async (signal) => {
        runs++;
        if (runs <= 2) throw new Error(`set-up failed (${runs})`); // its dependency was down
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        stoppedCleanly = true;
      },
      (error) => failures.push(error),
      { initialMs: 5, maxMs: 10 },
    );
    task.start();
    const deadline = Date.now() + 5_000;
    while (runs < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(runs).toBe(3);
    expect(failures.map((e) => (e as Error).message)).toEqual(['set-up failed (1)', 'set-up failed (2)']);
    await task.stop();
    expect(stoppedCleanly).toBe(true);
    expect(runs).toBe(3);
  });
});
