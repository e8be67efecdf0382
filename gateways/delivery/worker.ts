import { background } from '../lib/background.js';
import type { Logger } from 'pino';
import type { EventBus } from '../ports/bus.js';
import type { EventStore, StoredEvent } from '../../domain/ports/event-store.js';
import type { PresenceStore } from '../ports/presence.js';
import { noopTracing } from '../../infra/telemetry/noop.js';
import type { Tracing } from '../ports/telemetry.js';
import { encodeServerFrame, eventFrame, parsedEventFrame } from '../protocol/index.js';
import type { ConversationEvent } from '../../domain/conversation/events.js';
import { pushJobFor, type PushJob } from '../ports/push-job.js';
import type { PushQueue } from '../ports/push-queue.js';
import { encodeDeliveries, type DeliveryItem } from '../envelope/envelope.js';
import { emptyTracked, routeAndFold, type TrackedConversation } from '../../domain/conversation/recipients.js';
import { conversationIdOf } from '../../domain/conversation/stream.js';

/**
 * The delivery worker: a member of the bus's durable group `delivery`. For each event it works
 * out the recipients (recipients.ts: members, or for receipts the reader and the senders of the
 * newly covered messages) from its own fold of the conversation (loaded from the store on a miss
 * or when it sees a version gap), the nodes holding them (presence.nodesOf), and sends each node
 * one envelope (envelope.ts) per batch with the encoded Event frames and the users they go to.
 *
 * With a push queue it also plans push notifications: each MessageSent's recipients but
 * its sender who have no live connection at all in the presence answer the batch already got
 * (nodesOf empty) get one job each (id `<event_id>:<user_id>`), queued after the batch's envelopes
 * went out, so live delivery never waits for the queue. Messages older than `maxAgeMs` (default
 * 10 min) are not pushed: a worker started on a bus that still holds a day of events must not wake
 * everyone for old news. One consumer and one presence lookup serve both (ARCHITECTURE.md, Push).
 *
 * Duplicates and redeliveries at or below the folded version are dropped (a client that misses a
 * fan-out sees a gap through previous_version and syncs from the store). When routing or queueing
 * fails (presence store or push queue down) the batch's conversations are dropped from the cache
 * and the batch is handed back to the bus for redelivery: its envelopes may go out twice (clients
 * drop versions they have), its jobs are queued again (the queue drops ids it holds).
 */
export type DeliveryWorkerDeps = {
  bus: Pick<EventBus, 'consume' | 'sendToNode'>;
  store: Pick<EventStore, 'readStream'>;
  presence: Pick<PresenceStore, 'nodesOf'>;
  logger: Logger;
  /** Conversations whose fold is kept (default 10,000; least recently used go first). */
  cacheSize?: number;
  batchSize?: number;
  group?: string;
  /** A span per batch (default: none). */
  tracing?: Tracing;
  /** Push planning: where jobs for offline recipients go (none: no push planning). */
  push?: { queue: Pick<PushQueue, 'enqueue'>; maxAgeMs?: number; clock?: () => number };
};

export type DeliveryWorkerStats = {
  events: number;
  duplicates: number;
  skipped: number;
  envelopes: number;
  deliveries: number;
  loads: number;
  /**
   * Push planning. `pushMessages`: MessageSent events planned to the end (their jobs, if any,
   * queued and counted in `pushJobs`), so a reader that sees a message counted also sees its jobs.
   * `pushOnline`: recipients not pushed because they had a live connection; `pushStale`: messages
   * too old to push.
   */
  pushMessages: number;
  pushJobs: number;
  pushOnline: number;
  pushStale: number;
};

export const DELIVERY_GROUP = 'delivery';

type MessageSentData = Extract<ConversationEvent, { type: 'MessageSent' }>['data'];
type PushConversation = Parameters<typeof pushJobFor>[0]['conversation'];

export function createDeliveryWorker(deps: DeliveryWorkerDeps): DeliveryWorker {
  const cacheSize = deps.cacheSize ?? 10_000;
  const cache = new Map<string, TrackedConversation>();
  const stats: DeliveryWorkerStats = { events: 0, duplicates: 0, skipped: 0, envelopes: 0, deliveries: 0, loads: 0, pushMessages: 0, pushJobs: 0, pushOnline: 0, pushStale: 0 };
  const push = deps.push;
  const clock = push?.clock ?? Date.now;
  const maxAgeMs = push?.maxAgeMs ?? 10 * 60_000;

  function remember(t: TrackedConversation) {
    cache.delete(t.conversationId);
    cache.set(t.conversationId, t);
    while (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
  }

  /** The fold of `conversationId` caught up to at least `upTo` from the store. */
  async function load(streamId: string, conversationId: string, upTo: number): Promise<TrackedConversation> {
    const t = cache.get(conversationId) ?? emptyTracked(conversationId);
    while (t.version < upTo) {
      stats.loads++;
      const events = await deps.store.readStream(streamId, { from: t.version + 1, maxCount: Math.min(1000, upTo - t.version) });
      if (events.length === 0) throw new Error(`stream ${streamId} ends before version ${upTo}`);
      for (const e of events) {
        if (e.version !== t.version + 1) throw new Error(`stream ${streamId}: expected version ${t.version + 1}, read ${e.version}`);
        routeAndFold(t, e);
      }
    }
    remember(t);
    return t;
  }

  const tracing = deps.tracing ?? noopTracing;
  const handle = (events: StoredEvent[]): Promise<void> =>
    tracing.span('delivery.batch', { 'messaging.batch.message_count': events.length }, () => handleBatch(events));

  async function handleBatch(events: StoredEvent[]): Promise<void> {
    const items: DeliveryItem[] = [];
    const touched = new Set<string>();
    const everyone = new Set<string>();
    /** The batch's recent messages, for push planning once presence has answered. */
    const pushable: { event: StoredEvent; message: MessageSentData; conversation: PushConversation; recipients: string[] }[] = [];
    let messages = 0;
    try {
      for (const event of events) {
        stats.events++;
        const conversationId = conversationIdOf(event.stream_id);
        if (conversationId === null) {
          stats.skipped++;
          continue;
        }
        touched.add(conversationId);
        const cached = cache.get(conversationId);
        if (cached !== undefined && event.version <= cached.version) {
          stats.duplicates++;
          continue;
        }
        const t = await load(event.stream_id, conversationId, event.version - 1);
        if (event.version !== t.version + 1) {
          stats.duplicates++;
          continue;
        }
        const routed = routeAndFold(t, event);
        if (routed === null || routed.recipients.length === 0) {
          if (routed === null) deps.logger.warn({ event_id: event.event_id, type: event.type }, 'delivery: event does not match the domain schema; skipped');
          stats.skipped++;
          continue;
        }
        for (const r of routed.recipients) everyone.add(r);
        if (push !== undefined && routed.event.type === 'MessageSent') {
          messages++;
          const m = routed.event.data;
          if (clock() - Date.parse(m.created_at) <= maxAgeMs) {
            pushable.push({ event, message: m, conversation: { id: conversationId, kind: t.kind, name: t.name }, recipients: routed.recipients });
          } else {
            stats.pushStale++;
          }
        }
        let frame: Uint8Array;
        try {
          frame = encodeServerFrame(eventFrame(parsedEventFrame(event, routed.event, { previousVersion: routed.previousVersion })));
        } catch (error) {
          deps.logger.warn({ err: error, event_id: event.event_id }, 'delivery: event cannot become a frame; skipped');
          stats.skipped++;
          continue;
        }
        items.push({ conversationId, version: event.version, userIds: routed.recipients, frame });
      }
      if (everyone.size === 0) return; // nothing routed, so no message to plan either
      const nodes = await deps.presence.nodesOf([...everyone]);
      const perNode = new Map<string, DeliveryItem[]>();
      for (const item of items) {
        const byNode = new Map<string, string[]>();
        for (const user of item.userIds) {
          for (const node of nodes.get(user) ?? []) {
            let list = byNode.get(node);
            if (list === undefined) byNode.set(node, (list = []));
            list.push(user);
          }
        }
        for (const [node, userIds] of byNode) {
          let list = perNode.get(node);
          if (list === undefined) perNode.set(node, (list = []));
          list.push({ ...item, userIds });
          stats.deliveries += userIds.length;
        }
      }
      for (const [node, list] of perNode) {
        deps.bus.sendToNode(node, encodeDeliveries(list));
        stats.envelopes++;
      }
      const jobs: PushJob[] = [];
      let online = 0;
      for (const { event, message, conversation, recipients } of pushable) {
        for (const userId of recipients) {
          if (userId === message.sender_id) continue;
          if ((nodes.get(userId) ?? []).length > 0) online++;
          else jobs.push(pushJobFor({ eventId: event.event_id, userId, conversation, sequenceNumber: event.version, message }));
        }
      }
      if (jobs.length > 0) await push!.queue.enqueue(jobs);
      stats.pushJobs += jobs.length;
      stats.pushOnline += online;
      stats.pushMessages += messages;
    } catch (error) {
      for (const id of touched) cache.delete(id);
      throw error;
    }
  }

  /** Consumes until `signal` aborts. */
  const run = (signal: AbortSignal): Promise<void> => deps.bus.consume(deps.group ?? DELIVERY_GROUP, handle, { signal, batchSize: deps.batchSize ?? 200 });
  const lifecycle = background(run, (error) => deps.logger.error({ err: error }, 'delivery worker failed; starting it again'));

  return {
    handle,
    run,
    start: lifecycle.start,
    stop: lifecycle.stop,
    stats: () => ({ ...stats }),
  };
}

export interface DeliveryWorker {
  handle(events: StoredEvent[]): Promise<void>;
  run(signal: AbortSignal): Promise<void>;
  start(): void;
  stop(): Promise<void>;
  stats(): DeliveryWorkerStats;
}
