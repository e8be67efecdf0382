import type { PushJob } from '../../../gateways/ports/push-job.js';

/** Push job number `n` for tests: alice's text message `hello <n>` in direct conversation c1 to bob. */
export function testPushJob(n: number, over: Partial<PushJob> = {}): PushJob {
  return {
    job_id: `e${n}:${over.user_id ?? 'bob'}`,
    user_id: 'bob',
    conversation_id: 'c1',
    conversation_kind: 'direct',
    conversation_name: null,
    message_id: `m${n}`,
    sequence_number: n,
    sender_id: 'alice',
    content_type: 'text',
    text: `hello ${n}`,
    file_name: null,
    sent_at: new Date(Date.UTC(2026, 10, 28, 0, 0, n % 60, 0)).toISOString(),
    ...over,
  };
}
