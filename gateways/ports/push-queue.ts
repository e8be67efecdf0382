import type { PushJob } from './push-job.js';

/**
 * The push queue: jobs from the delivery worker (delivery/worker.ts plans them) to the senders
 * (sender.ts). JetStream work queue when NATS is configured (queue-jetstream.ts), in process
 * otherwise (queue-memory.ts).
 *
 * Guarantees:
 * - `enqueue` resolves once the queue holds every job; enqueuing a job_id it already holds (or
 *   held recently: JetStream's duplicate window, the memory queue's last ids) is a no-op.
 * - Each job goes to one consumer, at-least-once: a job is held by its consumer until `ack`ed
 *   (then gone), `retryLater` hands it back after a delay, and a job whose consumer died comes back
 *   after the ack wait (JetStream) — so a crash may repeat a notification, never lose one.
 * - A held job must be kept alive with `keepAlive` at least every 10 s (JetStream's ack wait is 30 s).
 * - No order is promised across users; jobs of one user arrive in enqueue order except redeliveries.
 */
export type HeldJob = {
  job: PushJob;
  /** 1 on the first delivery. */
  deliveries: number;
  ack(): void;
  retryLater(delayMs: number): void;
  keepAlive(): void;
};

export interface PushQueue {
  readonly kind: 'memory' | 'jetstream';
  enqueue(jobs: PushJob[]): Promise<void>;
  /** Hands every job to `handler` as it arrives, until `signal` aborts or the queue closes. */
  consume(handler: (held: HeldJob) => void, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
