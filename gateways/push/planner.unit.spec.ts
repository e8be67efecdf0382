import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../infra/event-store/port.js';
import type { PushJob } from './job.js';
import { createPushPlanner } from './planner.js';

/** Who gets a push job for each message: offline members but the sender, members at the time, recent messages only. */

const NOW = Date.parse('2026-11-28T12:00:00.000Z');
const silent = { warn() {}, error() {}, debug() {} };

function stream(conversationId: string, bodies: { type: string; data: unknown }[]): StoredEvent[] {
  return bodies.map((b, i) => ({
    event_id: `${conversationId}-e${i + 1}`,
    type: b.type,
    data: b.data,
    metadata: {},
    stream_id: `conversation-${conversationId}`,
    version: i + 1,
    shard: 0,
    position: i + 1,
    created_at: new Date(NOW).toISOString(),
  }));
}

const at = (msAgo: number) => new Date(NOW - msAgo).toISOString();
const created = (members: string[], kind: 'direct' | 'group' = 'group', name: string | null = 'Climbing') => ({
  type: 'ConversationCreated',
  data: { conversation_id: 'g1', kind, created_by: members[0], members, name, description: null, created_at: at(60_000) },
});
const message = (sender: string, content: string, msAgo = 0) => ({
  type: 'MessageSent',
  data: { message_id: `m-${content}`, sender_id: sender, content, content_type: 'text', media: null, client_message_id: null, created_at: at(msAgo) },
});

function harness(events: StoredEvent[], online: string[] = []) {
  const jobs: PushJob[] = [];
  const planner = createPushPlanner({
    bus: { consume: async () => {} },
    store: { readStream: async (_id, options) => events.filter((e) => e.version >= (options?.from ?? 1)).slice(0, options?.maxCount ?? 1000) },
    presence: { nodesOf: async (ids) => new Map(ids.map((id) => [id, online.includes(id) ? ['gw-1'] : []])) },
    queue: { enqueue: async (list) => void jobs.push(...list) },
    logger: silent,
    clock: () => NOW,
  });
  return { planner, jobs };
}

describe('push planner', () => {
  it('queues one job per offline member but the sender, with what the notification needs', async () => {
    const events = stream('g1', [created(['alice', 'bob', 'carol', 'dave']), message('alice', 'Saturday   at 9?')]);
    const { planner, jobs } = harness(events, ['dave']);
    await planner.handle(events);
    expect(jobs.map((j) => j.user_id).sort()).toEqual(['bob', 'carol']);
    expect(jobs[0]).toMatchObject({
      job_id: `g1-e2:${jobs[0]!.user_id}`,
      conversation_id: 'g1',
      conversation_kind: 'group',
      conversation_name: 'Climbing',
      sender_id: 'alice',
      sequence_number: 2,
      content_type: 'text',
      text: 'Saturday at 9?',
    });
    expect(planner.stats()).toMatchObject({ messages: 1, jobs: 2, online: 1 });
  });

  it('a member removed before the message, or added after it, gets no job', async () => {
    const events = stream('g1', [
      created(['alice', 'bob', 'carol']),
      { type: 'MemberRemoved', data: { user_id: 'carol', removed_by: 'alice', removed_at: at(1_000) } },
      message('alice', 'hello'),
      { type: 'MembersAdded', data: { user_ids: ['erin'], added_by: 'alice', added_at: at(0) } },
    ]);
    const { planner, jobs } = harness(events);
    // only the last two events arrive on the bus: the rest is loaded from the store
    await planner.handle(events.slice(2));
    expect(jobs.map((j) => j.user_id)).toEqual(['bob']);
  });

  it('skips messages older than 10 minutes (a push role started on a bus full of old events)', async () => {
    const events = stream('g1', [created(['alice', 'bob']), message('alice', 'old', 11 * 60_000), message('alice', 'new', 1_000)]);
    const { planner, jobs } = harness(events);
    await planner.handle(events);
    expect(jobs.map((j) => j.text)).toEqual(['new']);
    expect(planner.stats().stale).toBe(1);
  });

  it('drops redeliveries of events it has folded', async () => {
    const events = stream('g1', [created(['alice', 'bob'], 'direct', null), message('alice', 'once')]);
    const { planner, jobs } = harness(events);
    await planner.handle(events);
    await planner.handle(events.slice(1));
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ conversation_kind: 'direct', conversation_name: null });
  });
});
