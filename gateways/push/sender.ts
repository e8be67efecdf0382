import type { Logger } from 'pino';
import { backoffDelay, resolveRetry, sleep } from '../../infra/bus/retry.js';
import type { DeviceRegistry } from '../ports/devices.js';
import { isOutage } from '../../domain/ports/health.js';
import type { PresenceStore } from '../ports/presence.js';
import type { PushProvider, PushResult, PushTarget } from '../ports/push-provider.js';
import type { UserRepository } from '../ports/users.js';
import { composeNotification } from './notification.js';
import type { HeldJob, PushQueue } from '../ports/push-queue.js';

/**
 * The push sender: takes jobs off the push queue, batches them per user, and sends each batch as
 * ONE notification to every device of the user.
 *
 * - Batching: a user's batch is sent when no new job came for `quietMs` (default 1 s), and at the
 *   latest `maxDelayMs` (default 3 s) after its first job — a burst becomes one notification.
 * - Rate limit: at most one notification per user per `minIntervalMs` (default 3 s); jobs that
 *   arrive meanwhile wait and fold into the next one. So a message's notification leaves at most
 *   max(maxDelayMs, minIntervalMs) after it was queued (plus the provider's time).
 * - At send time the user is checked again: online by now (a live connection) → nothing is sent,
 *   their app syncs; no device → nothing.
 * - Devices the provider reports unregistered are removed from the device table. Transient
 *   failures are retried for those devices only, with exponential back-off (`retry`: 500 ms
 *   doubling, up to 5 attempts), then given up and logged: a notification minutes late is noise.
 * - Jobs are acknowledged once their notification went out (or was given up); when the user,
 *   device or presence lookup fails (database down) they are handed back to the queue with
 *   back-off. A crash before the ack repeats the notification (at-least-once).
 * - Batching and the rate limit are per sender process: with several push processes a user whose
 *   jobs are split between them can get one notification from each.
 */
export type PushSenderSettings = {
  quietMs?: number;
  maxDelayMs?: number;
  minIntervalMs?: number;
  retry?: { initialMs?: number; maxMs?: number; maxAttempts?: number };
};

export type PushSenderDeps = {
  queue: Pick<PushQueue, 'consume'>;
  presence: Pick<PresenceStore, 'nodesOf'>;
  devices: Pick<DeviceRegistry, 'listForUsers' | 'removeTokens'>;
  users: Pick<UserRepository, 'findById'>;
  provider: PushProvider;
  logger: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  settings?: PushSenderSettings;
};

export type PushSenderStats = {
  jobs: number;
  duplicates: number;
  notifications: number;
  deliveries: number;
  unregistered: number;
  retries: number;
  givenUp: number;
  failed: number;
  skippedOnline: number;
  noDevice: number;
  handedBack: number;
};

type Pending = { jobs: HeldJob[]; firstAt: number; lastAt: number; timer: NodeJS.Timeout | null };

export function createPushSender(deps: PushSenderDeps): PushSender {
  const s = deps.settings ?? {};
  const quietMs = s.quietMs ?? 1_000;
  const maxDelayMs = s.maxDelayMs ?? 3_000;
  const minIntervalMs = s.minIntervalMs ?? 3_000;
  const retry = resolveRetry({ initialMs: s.retry?.initialMs ?? 500, maxMs: s.retry?.maxMs ?? 8_000 });
  const maxAttempts = s.retry?.maxAttempts ?? 5;
  const stats: PushSenderStats = { jobs: 0, duplicates: 0, notifications: 0, deliveries: 0, unregistered: 0, retries: 0, givenUp: 0, failed: 0, skippedOnline: 0, noDevice: 0, handedBack: 0 };

  const pending = new Map<string, Pending>();
  const sending = new Set<string>();
  const lastSent = new Map<string, number>();
  const held = new Set<HeldJob>();
  const inFlight = new Set<Promise<void>>();
  let controller: AbortController | undefined;
  let running: Promise<void> | undefined;
  let keepAlive: NodeJS.Timeout | undefined;

  const settle = (jobs: HeldJob[], how: 'ack' | { retryAfterMs: number }) => {
    for (const j of jobs) {
      held.delete(j);
      if (how === 'ack') j.ack();
      else j.retryLater(how.retryAfterMs);
    }
  };

  function dueAt(userId: string, p: Pending): number {
    const batched = Math.min(p.lastAt + quietMs, p.firstAt + maxDelayMs);
    const last = lastSent.get(userId);
    return last === undefined ? batched : Math.max(batched, last + minIntervalMs);
  }

  function schedule(userId: string, p: Pending) {
    if (p.timer) clearTimeout(p.timer);
    p.timer = setTimeout(() => flush(userId), Math.max(0, dueAt(userId, p) - Date.now()));
  }

  function onJob(job: HeldJob) {
    if (controller?.signal.aborted) {
      job.retryLater(0);
      return;
    }
    stats.jobs++;
    held.add(job);
    const now = Date.now();
    const userId = job.job.user_id;
    let p = pending.get(userId);
    if (!p) pending.set(userId, (p = { jobs: [], firstAt: now, lastAt: now, timer: null }));
    p.jobs.push(job);
    p.lastAt = now;
    if (!sending.has(userId)) schedule(userId, p);
  }

  function flush(userId: string) {
    const p = pending.get(userId);
    if (!p || sending.has(userId)) return;
    pending.delete(userId);
    sending.add(userId);
    lastSent.set(userId, Date.now());
    const done = deliver(userId, p.jobs)
      .catch((error: unknown) => deps.logger.error({ err: error, user_id: userId }, 'push: batch failed'))
      .finally(() => {
        sending.delete(userId);
        inFlight.delete(done);
        const next = pending.get(userId);
        if (next && !controller?.signal.aborted) schedule(userId, next);
        // Forget rate-limit marks that no longer matter.
        const cutoff = Date.now() - minIntervalMs;
        if (lastSent.size > 10_000) for (const [u, at] of lastSent) if (at < cutoff) lastSent.delete(u);
      });
    inFlight.add(done);
  }

  async function sendWithRetry(targets: PushTarget[], jobs: HeldJob[], userId: string) {
    const notification = composeNotification(
      jobs.map((j) => j.job),
      await senderNames(jobs),
    );
    let remaining = targets;
    let sent = 0;
    for (let attempt = 1; remaining.length > 0; attempt++) {
      let results: PushResult[];
      try {
        results = await deps.provider.send(remaining, notification);
      } catch (error) {
        results = remaining.map((t) => ({ token: t.token, outcome: 'transient' as const, error: error instanceof Error ? error.message : String(error) }));
      }
      const dead = results.filter((r) => r.outcome === 'unregistered').map((r) => r.token);
      if (dead.length > 0) {
        const removed = await deps.devices.removeTokens(dead);
        stats.unregistered += removed;
        deps.logger.info({ user_id: userId, removed }, 'push: removed devices the provider reports unregistered');
      }
      for (const r of results.filter((r) => r.outcome === 'failed')) {
        stats.failed++;
        deps.logger.error({ user_id: userId, error: r.error }, 'push: provider refused the notification');
      }
      sent += results.filter((r) => r.outcome === 'sent').length;
      const transient = new Set(results.filter((r) => r.outcome === 'transient').map((r) => r.token));
      remaining = remaining.filter((t) => transient.has(t.token));
      if (remaining.length === 0) break;
      if (attempt >= maxAttempts) {
        stats.givenUp += remaining.length;
        deps.logger.error({ user_id: userId, devices: remaining.length, attempts: attempt, error: results.find((r) => r.outcome === 'transient')?.error }, 'push: giving up after transient failures');
        break;
      }
      stats.retries++;
      const delayMs = backoffDelay(attempt, retry);
      deps.logger.warn({ user_id: userId, devices: remaining.length, attempt, delayMs }, 'push: transient failure; retrying');
      await sleep(delayMs, controller?.signal);
      if (controller?.signal.aborted) break;
    }
    if (sent > 0) {
      stats.notifications++;
      stats.deliveries += sent;
    }
  }

  async function senderNames(jobs: HeldJob[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (const id of new Set(jobs.map((j) => j.job.sender_id))) {
      const user = await deps.users.findById(id);
      if (user) names.set(id, user.username);
    }
    return names;
  }

  async function deliver(userId: string, batch: HeldJob[]): Promise<void> {
    const seen = new Set<string>();
    const jobs: HeldJob[] = [];
    const duplicates: HeldJob[] = [];
    for (const j of batch) {
      if (seen.has(j.job.job_id)) duplicates.push(j);
      else jobs.push(j);
      seen.add(j.job.job_id);
    }
    stats.duplicates += duplicates.length;
    settle(duplicates, 'ack');
    let targets: PushTarget[];
    try {
      const nodes = await deps.presence.nodesOf([userId]);
      if ((nodes.get(userId) ?? []).length > 0) {
        stats.skippedOnline++;
        settle(jobs, 'ack');
        return;
      }
      targets = (await deps.devices.listForUsers([userId])).map((d) => ({ token: d.token, platform: d.platform }));
    } catch (error) {
      const delayMs = backoffDelay(Math.max(...jobs.map((j) => j.deliveries)), retry);
      // An outage (database or Redis down) is logged once by its health; a batch here is routine.
      (isOutage(error) ? deps.logger.debug : deps.logger.warn).call(deps.logger, { err: error, user_id: userId, jobs: jobs.length, delayMs }, 'push: lookup failed; handing the jobs back');
      stats.handedBack += jobs.length;
      settle(jobs, { retryAfterMs: delayMs });
      return;
    }
    if (targets.length === 0) {
      stats.noDevice++;
      settle(jobs, 'ack');
      return;
    }
    try {
      await sendWithRetry(targets, jobs, userId);
      settle(jobs, 'ack');
    } catch (error) {
      const delayMs = backoffDelay(Math.max(...jobs.map((j) => j.deliveries)), retry);
      (isOutage(error) ? deps.logger.debug : deps.logger.warn).call(deps.logger, { err: error, user_id: userId, delayMs }, 'push: send failed; handing the jobs back');
      stats.handedBack += jobs.length;
      settle(jobs, { retryAfterMs: delayMs });
    }
  }

  return {
    /** Takes one job (what `run` does for each job of the queue); exposed for tests. */
    onJob,
    run(signal: AbortSignal): Promise<void> {
      return deps.queue.consume(onJob, signal);
    },
    start() {
      if (running) return;
      controller = new AbortController();
      keepAlive = setInterval(() => {
        for (const j of held) j.keepAlive();
      }, 10_000);
      running = this.run(controller.signal).catch((error: unknown) => deps.logger.error({ err: error }, 'push sender stopped'));
    },
    /** Stops taking jobs; waits for notifications being sent; hands waiting jobs back to the queue. */
    async stop() {
      controller?.abort();
      await running;
      running = undefined;
      for (const [userId, p] of pending) {
        if (p.timer) clearTimeout(p.timer);
        pending.delete(userId);
        settle(p.jobs, { retryAfterMs: 0 });
      }
      await Promise.allSettled([...inFlight]);
      if (keepAlive) clearInterval(keepAlive);
    },
    stats: () => ({ ...stats }),
    /** True when no job is waiting or being sent (tests wait for it instead of sleeping). */
    idle: () => held.size === 0 && sending.size === 0 && pending.size === 0,
  };
}

export interface PushSender {
  /** Takes one job (what `run` does for each job of the queue); exposed for tests. */
  onJob(job: HeldJob): void;
  run(signal: AbortSignal): Promise<void>;
  start(): void;
  /** Stops taking jobs; waits for notifications being sent; hands waiting jobs back to the queue. */
  stop(): Promise<void>;
  stats(): PushSenderStats;
  /** True when no job is waiting or being sent (tests wait for it instead of sleeping). */
  idle(): boolean;
}
