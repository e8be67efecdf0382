import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PushJob } from '../../gateways/ports/push-job.js';
import type { HeldJob, PushQueue } from '../../gateways/ports/push-queue.js';

/** The PushQueue contract, run against the memory and the JetStream queue. */
export function pushQueueContract(name: string, create: () => Promise<{ queue: PushQueue; teardown?: () => Promise<void> }>) {
  describe(`PushQueue contract: ${name}`, () => {
    let queue: PushQueue;
    let teardown: (() => Promise<void>) | undefined;
    let controller: AbortController;
    const received: HeldJob[] = [];
    let consuming: Promise<void>;

    beforeEach(async () => {
      ({ queue, teardown } = await create());
      received.length = 0;
      controller = new AbortController();
      consuming = queue.consume((held) => received.push(held), controller.signal);
    });
    afterEach(async () => {
      controller.abort();
      await consuming;
      await queue.close();
      await teardown?.();
    });

    let n = 0;
    const job = (userId = 'u1'): PushJob => {
      n++;
      return {
        job_id: `event-${n}-${Math.random().toString(36).slice(2)}:${userId}`,
        user_id: userId,
        conversation_id: 'c1',
        conversation_kind: 'direct',
        conversation_name: null,
        message_id: `m${n}`,
        sequence_number: n + 1,
        sender_id: 'alice',
        content_type: 'text',
        text: `hello ${n}`,
        file_name: null,
        sent_at: new Date().toISOString(),
      };
    };
    const waitFor = async (probe: () => boolean, what: string) => {
      const deadline = Date.now() + 5_000;
      while (!probe()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };

    it('hands every job to the consumer, once per enqueue of a job_id', async () => {
      const a = job('u1');
      const b = job('user with spaces/and.dots');
      await queue.enqueue([a, b]);
      await queue.enqueue([a]); // a duplicate
      await waitFor(() => received.length >= 2, 'two jobs');
      await new Promise((r) => setTimeout(r, 200));
      expect(received.map((h) => h.job).sort((x, y) => x.job_id.localeCompare(y.job_id))).toEqual([a, b].sort((x, y) => x.job_id.localeCompare(y.job_id)));
      expect(received.map((h) => h.deliveries)).toEqual([1, 1]);
      for (const h of received) h.ack();
    });

    it('hands a job back with retryLater, counting deliveries', async () => {
      const a = job();
      await queue.enqueue([a]);
      await waitFor(() => received.length === 1, 'the job');
      received[0]!.keepAlive();
      received[0]!.retryLater(100);
      await waitFor(() => received.length === 2, 'the redelivery');
      expect(received[1]!.job).toEqual(a);
      expect(received[1]!.deliveries).toBe(2);
      received[1]!.ack();
    });
  });
}
