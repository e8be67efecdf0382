import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PushNotification, PushOutcome, PushProvider, PushTarget } from '../ports/push-provider.js';
import type { PushJob } from '../ports/push-job.js';
import { testPushJob } from '../../infra/push-queue/testing/jobs.js';
import type { HeldJob } from '../ports/push-queue.js';
import { createPushSender, type PushSenderSettings } from './sender.js';

/** Batching, rate limit, retries and token removal of the sender, on fake timers. */

const silent = { info() {}, warn() {}, error() {}, debug() {} };
let n = 0;

function held(userId = 'bob', over: Partial<PushJob> = {}) {
  n++;
  const job = testPushJob(n, { user_id: userId, sent_at: new Date(Date.now()).toISOString(), ...over });
  const h = { job, deliveries: 1, ack: vi.fn(), retryLater: vi.fn(), keepAlive: vi.fn() };
  return h satisfies HeldJob;
}

function harness(settings: PushSenderSettings = {}, options: { online?: Set<string>; tokens?: Record<string, string[]> } = {}) {
  const sent: { at: number; targets: PushTarget[]; notification: PushNotification }[] = [];
  const script: Record<string, PushOutcome>[] = [];
  const tokens = options.tokens ?? { bob: ['bob-1', 'bob-2'], carol: ['carol-1'] };
  const removed: string[] = [];
  const provider: PushProvider = {
    name: 'fake',
    async send(targets, notification) {
      sent.push({ at: Date.now(), targets, notification });
      const outcomes = script.shift() ?? {};
      return targets.map((t) => ({ token: t.token, outcome: outcomes[t.token] ?? 'sent' }));
    },
    async close() {},
  };
  const sender = createPushSender({
    queue: { consume: async () => {} },
    presence: { nodesOf: async (ids) => new Map(ids.map((id) => [id, options.online?.has(id) ? ['node-1'] : []])) },
    devices: {
      listForUsers: async (ids) => ids.flatMap((id) => (tokens[id] ?? []).filter((t) => !removed.includes(t)).map((token) => ({ device_id: token, user_id: id, platform: 'android' as const, token, created_at: '', updated_at: '' }))),
      removeTokens: async (list) => { removed.push(...list); return list.length; },
    },
    users: { findById: async (id) => ({ user_id: id, username: id === 'alice' ? 'Alice' : id, email: '', phone_number: null, created_at: '' }) },
    provider,
    logger: silent,
    settings,
  });
  return { sender, sent, script, removed };
}

describe('push sender', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a burst becomes one notification, sent after the quiet period, to every device', async () => {
    const { sender, sent } = harness();
    const start = Date.now();
    const jobs = [held(), held(), held(), held(), held()];
    for (const j of jobs) {
      sender.onJob(j);
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.at - start).toBe(1_400); // last job at 400 ms + 1 s quiet
    expect(sent[0]!.targets.map((t) => t.token)).toEqual(['bob-1', 'bob-2']);
    expect(sent[0]!.notification).toMatchObject({ title: 'Alice', body: '5 new messages from Alice' });
    for (const j of jobs) expect(j.ack).toHaveBeenCalledOnce();
    expect(sender.idle()).toBe(true);
    expect(sender.stats()).toMatchObject({ jobs: 5, notifications: 1, deliveries: 2 });
  });

  it('a steady stream is cut at the max delay; later messages wait for the per-user interval', async () => {
    const { sender, sent } = harness({ quietMs: 1_000, maxDelayMs: 3_000, minIntervalMs: 5_000 });
    const start = Date.now();
    for (let i = 0; i < 8; i++) {
      sender.onJob(held());
      await vi.advanceTimersByTimeAsync(500);
    }
    // first job at 0: cut at 3 s with the 6 jobs that came before (0, 0.5, ..., 2.5 s)
    expect(sent.map((s) => [s.at - start, s.notification.data.count])).toEqual([[3_000, '6']]);
    await vi.advanceTimersByTimeAsync(10_000);
    // the jobs at 3.0 and 3.5 s wait for 3 s + 5 s, and go out together
    expect(sent.map((s) => [s.at - start, s.notification.data.count])).toEqual([
      [3_000, '6'],
      [8_000, '2'],
    ]);
  });

  it('users are batched and rate limited apart', async () => {
    const { sender, sent } = harness();
    sender.onJob(held('bob'));
    sender.onJob(held('carol'));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sent.map((s) => s.targets.map((t) => t.token))).toEqual([['bob-1', 'bob-2'], ['carol-1']]);
  });

  it('retries transient failures for those devices only, with exponential back-off, then gives up', async () => {
    const { sender, sent, script } = harness({ retry: { initialMs: 500, maxAttempts: 4 } });
    script.push({ 'bob-2': 'transient' }, { 'bob-2': 'transient' }, { 'bob-2': 'transient' }, { 'bob-2': 'transient' });
    const j = held();
    sender.onJob(j);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(sent.map((s) => s.targets.map((t) => t.token))).toEqual([['bob-1', 'bob-2'], ['bob-2'], ['bob-2'], ['bob-2']]);
    const gaps = sent.slice(1).map((s, i) => s.at - sent[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(400); // 500 ms ± 20 %
    expect(gaps[0]).toBeLessThanOrEqual(600);
    expect(gaps[1]).toBeGreaterThanOrEqual(800); // 1 s
    expect(gaps[2]).toBeGreaterThanOrEqual(1_600); // 2 s
    expect(sender.stats()).toMatchObject({ retries: 3, givenUp: 1, notifications: 1, deliveries: 1 });
    expect(j.ack).toHaveBeenCalledOnce();
  });

  it('removes tokens the provider reports unregistered', async () => {
    const { sender, script, removed } = harness();
    script.push({ 'bob-1': 'unregistered' });
    sender.onJob(held());
    await vi.advanceTimersByTimeAsync(2_000);
    expect(removed).toEqual(['bob-1']);
    expect(sender.stats().unregistered).toBe(1);
  });

  it('sends nothing to a user who came online meanwhile, or has no device; acks either way', async () => {
    const online = harness({}, { online: new Set(['bob']) });
    const a = held();
    online.sender.onJob(a);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(online.sent).toHaveLength(0);
    expect(a.ack).toHaveBeenCalledOnce();
    const none = harness({}, { tokens: {} });
    const b = held();
    none.sender.onJob(b);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(none.sent).toHaveLength(0);
    expect(b.ack).toHaveBeenCalledOnce();
    expect(none.sender.stats().noDevice).toBe(1);
  });

  it('a redelivered job (same job_id) counts once', async () => {
    const { sender, sent } = harness();
    const j = held();
    sender.onJob(j);
    sender.onJob({ ...j, ack: vi.fn(), retryLater: vi.fn(), keepAlive: vi.fn() });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(sent.map((s) => s.notification.body)).toEqual([j.job.text]);
    expect(sender.stats().duplicates).toBe(1);
  });
});
