import type { DependencyHealth, DependencyReporter, DependencyState } from '../../domain/ports/health.js';

export type DependencyHealthLogger = {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
};

export type DependencyHealthOptions = {
  logger: DependencyHealthLogger;
  /** How long one probe may take before it counts as a failure (default 2 s). */
  probeTimeoutMs?: number;
  /**
   * A dependency is logged back once it has stayed up this long (default 1 s): a server that
   * flaps while it stops or starts (connections cut one by one, a query that still got through)
   * makes one "down" and one "back" line, not one per flap. Readiness follows every change at once.
   */
  settleMs?: number;
  /** Checks within this long of the start of the last one share its result (default 100 ms: a flood of readiness requests costs at most ten probes a second). */
  checkIntervalMs?: number;
  clock?: () => number;
};

type Entry = {
  state: DependencyState;
  probe: (() => Promise<void>) | undefined;
  reporter: DependencyReporter;
  /** When the logged outage began (0: none logged). */
  downAt: number;
  /** Logs "back" once the dependency has stayed up for settleMs. */
  settling: ReturnType<typeof setTimeout> | undefined;
};

function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    // A DependencyUnavailableError says what is down; its cause says why.
    const cause = error.cause;
    return cause instanceof Error && cause.message !== '' ? cause.message : error.message;
  }
  return String(error);
}

/**
 * The dependency states of one process (port.ts). One log line per outage each way: `warn`
 * "dependency down" with the reason, `info` "dependency back" with how long it was down (once it
 * has stayed up for settleMs).
 */
export function createDependencyHealth(options: DependencyHealthOptions): DependencyHealth {
  const clock = options.clock ?? Date.now;
  const probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
  const checkIntervalMs = options.checkIntervalMs ?? 100;
  const settleMs = options.settleMs ?? 1_000;
  const startedAt = new Date(clock()).toISOString();
  const entries = new Map<string, Entry>();
  /** The last round of probes: checks within checkIntervalMs of its start share it. */
  let lastCheck: { at: number; probed: Promise<void> } | undefined;

  const states = () => [...entries.values()].map((e) => ({ ...e.state }));

  function withTimeout(name: string, probe: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no answer within ${probeTimeoutMs} ms`)), probeTimeoutMs);
      timer.unref?.();
      probe().then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  return {
    register(name, probe) {
      const existing = entries.get(name);
      if (existing !== undefined) {
        existing.probe ??= probe;
        return existing.reporter;
      }
      const entry: Entry = {
        state: { name, up: true, since: startedAt, reason: null },
        probe,
        downAt: 0,
        settling: undefined,
        reporter: {
          up() {
            if (entry.state.up) return;
            entry.state = { name, up: true, since: new Date(clock()).toISOString(), reason: null };
            if (entry.downAt === 0 || entry.settling !== undefined) return;
            entry.settling = setTimeout(() => {
              entry.settling = undefined;
              if (!entry.state.up) return;
              options.logger.info({ dependency: name, down_ms: clock() - entry.downAt }, 'dependency back');
              entry.downAt = 0;
            }, settleMs);
            entry.settling.unref?.();
          },
          down(error) {
            if (entry.settling !== undefined) {
              clearTimeout(entry.settling); // it had not stayed up: the same outage goes on
              entry.settling = undefined;
            }
            if (!entry.state.up) {
              entry.state.reason = reasonOf(error);
              return;
            }
            const now = clock();
            entry.state = { name, up: false, since: new Date(now).toISOString(), reason: reasonOf(error) };
            if (entry.downAt !== 0) return; // still the outage already logged
            entry.downAt = now;
            options.logger.warn({ dependency: name, reason: entry.state.reason }, 'dependency down');
          },
        },
      };
      entries.set(name, entry);
      return entry.reporter;
    },

    states,

    ready() {
      for (const e of entries.values()) if (!e.state.up) return false;
      return true;
    },

    check() {
      const now = clock();
      // A check that shares the last round of probes still answers the states as they are once it
      // is done: a report since (a query that got through) is not hidden behind the round's snapshot.
      if (lastCheck !== undefined && now - lastCheck.at < checkIntervalMs) return lastCheck.probed.then(states);
      const probed = Promise.all(
        [...entries.entries()].map(async ([name, e]) => {
          if (e.probe === undefined) return;
          try {
            await withTimeout(name, e.probe);
            e.reporter.up();
          } catch (error) {
            e.reporter.down(error);
          }
        }),
      ).then(() => undefined);
      lastCheck = { at: now, probed };
      return probed.then(states);
    },
  };
}
