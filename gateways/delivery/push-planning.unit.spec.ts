import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import type { PushJob } from '../ports/push-job.js';
import { decodeDeliveries } from '../envelope/envelope.js';
import { createDeliveryWorker } from './worker.js';

/**
 * Push planning in the delivery worker: who gets a push job for each message (offline members but
 * the sender, members at the time, recent messages only), from the presence answer the batch is
 * routed with, and only once the batch's envelopes went out.
 */

const NOW = Date.parse('2026-11-28T12:00:00.000Z');

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

function harness(events: StoredEvent[], online: string[] = [], queue = { failing: false }) {
  const jobs: PushJob[] = [];
  /** What happened, in order: 'envelope' per node message, 'enqueue' per queue call. */
  const order: string[] = [];
  const lookups: string[][] = [];
  const worker = createDeliveryWorker({
    bus: {
      consume: async () => {},
      sendToNode: (_node, payload) => {
        decodeDeliveries(payload);
        order.push('envelope');
      },
    },
    store: { readStream: async (_id, o) => events.filter((e) => e.version >= (o?.from ?? 1)).slice(0, o?.maxCount ?? 1000) },
    presence: {
      nodesOf: async (ids) => {
        lookups.push([...ids]);
        return new Map(ids.map((id) => [id, online.includes(id) ? ['gw-1'] : []]));
      },
    },
    logger: pino({ level: 'silent' }),
    push: {
      queue: {
        enqueue: async (list) => {
          order.push('enqueue');
          if (queue.failing) throw new Error('push queue unavailable');
          jobs.push(...list);
        },
      },
      clock: () => NOW,
    },
  });
  return { worker, jobs, order, lookups };
}

describe('delivery worker: push planning', () => {
  it('queues one job per offline member but the sender, with what the notification needs, after the envelopes went out', async () => {
    const events = stream('g1', [created(['alice', 'bob', 'carol', 'dave']), message('alice', 'Saturday   at 9?')]);
    const { worker, jobs, order, lookups } = harness(events, ['dave', 'alice']);
    await worker.handle(events);
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
    expect(worker.stats()).toMatchObject({ pushMessages: 1, pushJobs: 2, pushOnline: 1 });
    // one presence lookup serves delivery and push; live delivery does not wait for the queue
    expect(lookups).toHaveLength(1);
    expect(order).toEqual(['envelope', 'enqueue']);
  });

  it('a member removed before the message, or added after it, gets no job', async () => {
    const events = stream('g1', [
      created(['alice', 'bob', 'carol']),
      { type: 'MemberRemoved', data: { user_id: 'carol', removed_by: 'alice', removed_at: at(1_000) } },
      message('alice', 'hello'),
      { type: 'MembersAdded', data: { user_ids: ['erin'], added_by: 'alice', added_at: at(0) } },
    ]);
    const { worker, jobs } = harness(events);
    // only the last two events arrive on the bus: the rest is loaded from the store
    await worker.handle(events.slice(2));
    expect(jobs.map((j) => j.user_id)).toEqual(['bob']);
  });

  it('skips messages older than 10 minutes (a worker started on a bus full of old events)', async () => {
    const events = stream('g1', [created(['alice', 'bob']), message('alice', 'old', 11 * 60_000), message('alice', 'new', 1_000)]);
    const { worker, jobs } = harness(events);
    await worker.handle(events);
    expect(jobs.map((j) => j.text)).toEqual(['new']);
    expect(worker.stats()).toMatchObject({ pushStale: 1, pushMessages: 2 });
  });

  it('drops redeliveries of events it has folded', async () => {
    const events = stream('g1', [created(['alice', 'bob'], 'direct', null), message('alice', 'once')]);
    const { worker, jobs } = harness(events);
    await worker.handle(events);
    await worker.handle(events.slice(1));
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ conversation_kind: 'direct', conversation_name: null });
  });

  it('a queue that fails hands the batch back, and its redelivery is planned again in full', async () => {
    const events = stream('g1', [created(['alice', 'bob']), message('alice', 'retry me')]);
    const queue = { failing: true };
    const { worker, jobs, order } = harness(events, ['alice'], queue);
    await expect(worker.handle(events)).rejects.toThrow(/push queue unavailable/);
    expect(worker.stats()).toMatchObject({ pushMessages: 0, pushJobs: 0 });

    queue.failing = false;
    await worker.handle(events); // the bus redelivers the batch: not taken for a duplicate

    expect(jobs.map((j) => j.job_id)).toEqual(['g1-e2:bob']);
    expect(order).toEqual(['envelope', 'enqueue', 'envelope', 'enqueue']);
    expect(worker.stats()).toMatchObject({ pushMessages: 1, pushJobs: 1 });
  });
});
