import type { PushJob } from '../../gateways/ports/push-job.js';
import type { HeldJob, PushQueue } from '../../gateways/ports/push-queue.js';

/**
 * The in-process push queue (no NATS): one process, one consumer. Jobs held by the consumer are
 * in memory only: a crash loses them (the embedded default accepts that; the JetStream queue does not).
 */
export function createMemoryPushQueue(options: { dedupeWindow?: number } = {}) {
  const dedupeWindow = options.dedupeWindow ?? 10_000;
  const seen = new Set<string>();
  const ready: { job: PushJob; deliveries: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let deliver: ((entry: { job: PushJob; deliveries: number }) => void) | null = null;
  let closed = false;
  const closing = new AbortController();

  const remember = (id: string) => {
    seen.add(id);
    if (seen.size > dedupeWindow) seen.delete(seen.values().next().value!);
  };

  const push = (entry: { job: PushJob; deliveries: number }) => {
    if (closed) return;
    if (deliver) deliver(entry);
    else ready.push(entry);
  };

  return {
    kind: 'memory' as const,
    async enqueue(jobs: PushJob[]) {
      if (closed) throw new Error('the push queue is closed');
      for (const job of jobs) {
        if (seen.has(job.job_id)) continue;
        remember(job.job_id);
        push({ job, deliveries: 1 });
      }
    },
    async consume(handler: (held: HeldJob) => void, signal: AbortSignal) {
      if (deliver) throw new Error('the memory push queue has one consumer');
      deliver = ({ job, deliveries }) => {
        let settled = false;
        handler({
          job,
          deliveries,
          ack() {
            settled = true;
          },
          retryLater(delayMs: number) {
            if (settled) return;
            settled = true;
            const timer = setTimeout(() => {
              timers.delete(timer);
              push({ job, deliveries: deliveries + 1 });
            }, delayMs);
            timers.add(timer);
          },
          keepAlive() {},
        });
      };
      for (const entry of ready.splice(0)) deliver(entry);
      const stop = AbortSignal.any([signal, closing.signal]);
      await new Promise<void>((resolve) => {
        if (stop.aborted) return resolve();
        stop.addEventListener('abort', () => resolve(), { once: true });
      });
      deliver = null;
    },
    async close() {
      closed = true;
      closing.abort();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  } satisfies PushQueue;
}
