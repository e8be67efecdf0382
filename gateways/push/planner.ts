import { background } from '../lib/background.js';
import type { Logger } from 'pino';
import type { EventBus } from '../../infra/bus/port.js';
import type { EventStore, StoredEvent } from '../../infra/event-store/port.js';
import type { PresenceStore } from '../../infra/presence/port.js';
import { conversationIdOf, emptyTracked, routeAndFold, type TrackedConversation } from '../delivery/recipients.js';
import { textPreview, type PushJob } from './job.js';
import type { PushQueue } from './queue.js';

/**
 * The push planner: a member of the bus's durable group `push`. For each MessageSent it works out
 * the members (the same fold as delivery: recipients.ts, so a member removed before the message
 * is not one), leaves out the sender, asks presence which of the others have no live connection
 * at all (`nodesOf` empty), and queues one job per such user.
 *
 * - Messages older than `maxAgeMs` (default 10 min) are skipped: a push role started on a bus that
 *   still holds a day of events must not wake everyone for old news.
 * - Duplicates and redeliveries at or below the folded version are dropped; a version gap loads
 *   the stream from the store. When anything fails the batch's conversations leave the cache and
 *   the batch goes back to the bus (at-least-once; the queue dedupes by job id).
 */
export type PushPlannerDeps = {
  bus: Pick<EventBus, 'consume'>;
  store: Pick<EventStore, 'readStream'>;
  presence: Pick<PresenceStore, 'nodesOf'>;
  queue: Pick<PushQueue, 'enqueue'>;
  logger: Pick<Logger, 'warn' | 'error' | 'debug'>;
  clock?: () => number;
  maxAgeMs?: number;
  cacheSize?: number;
  group?: string;
};

export const PUSH_GROUP = 'push';

type Folded = { tracked: TrackedConversation; kind: 'direct' | 'group'; name: string | null };

/**
 * `messages`: MessageSent events planned to the end (their jobs, if any, are enqueued and counted
 * in `jobs`), so a reader that sees a message counted also sees its jobs.
 */
export type PushPlannerStats = { events: number; messages: number; jobs: number; online: number; stale: number; loads: number };

export function createPushPlanner(deps: PushPlannerDeps) {
  const clock = deps.clock ?? Date.now;
  const maxAgeMs = deps.maxAgeMs ?? 10 * 60_000;
  const cacheSize = deps.cacheSize ?? 10_000;
  const cache = new Map<string, Folded>();
  const stats: PushPlannerStats = { events: 0, messages: 0, jobs: 0, online: 0, stale: 0, loads: 0 };

  /** Folds one event; returns the routed event (null when the schema refuses it). */
  function fold(f: Folded, event: StoredEvent) {
    const routed = routeAndFold(f.tracked, event);
    if (routed?.event.type === 'ConversationCreated') {
      f.kind = routed.event.data.kind;
      f.name = routed.event.data.name;
    }
    return routed;
  }

  async function load(streamId: string, conversationId: string, upTo: number): Promise<Folded> {
    const f = cache.get(conversationId) ?? { tracked: emptyTracked(conversationId), kind: 'direct' as const, name: null };
    while (f.tracked.version < upTo) {
      stats.loads++;
      const events = await deps.store.readStream(streamId, { from: f.tracked.version + 1, maxCount: Math.min(1000, upTo - f.tracked.version) });
      if (events.length === 0) throw new Error(`stream ${streamId} ends before version ${upTo}`);
      for (const e of events) {
        if (e.version !== f.tracked.version + 1) throw new Error(`stream ${streamId}: expected version ${f.tracked.version + 1}, read ${e.version}`);
        fold(f, e);
      }
    }
    cache.delete(conversationId);
    cache.set(conversationId, f);
    while (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
    return f;
  }

  async function handle(events: StoredEvent[]): Promise<void> {
    const candidates: PushJob[] = [];
    const touched = new Set<string>();
    let messages = 0;
    try {
      for (const event of events) {
        stats.events++;
        const conversationId = conversationIdOf(event.stream_id);
        if (conversationId === null) continue;
        touched.add(conversationId);
        const cached = cache.get(conversationId);
        if (cached !== undefined && event.version <= cached.tracked.version) continue;
        const f = await load(event.stream_id, conversationId, event.version - 1);
        if (event.version !== f.tracked.version + 1) continue;
        const routed = fold(f, event);
        if (routed === null || routed.event.type !== 'MessageSent') continue;
        messages++;
        const m = routed.event.data;
        const sentAt = Date.parse(m.created_at);
        if (!(clock() - sentAt <= maxAgeMs)) {
          stats.stale++;
          continue;
        }
        for (const userId of routed.recipients) {
          if (userId === m.sender_id) continue;
          candidates.push({
            job_id: `${event.event_id}:${userId}`,
            user_id: userId,
            conversation_id: conversationId,
            conversation_kind: f.kind,
            conversation_name: f.name,
            message_id: m.message_id,
            sequence_number: event.version,
            sender_id: m.sender_id,
            content_type: m.content_type,
            text: m.content_type === 'text' ? textPreview(m.content) : '',
            file_name: m.media?.file_name ?? null,
            sent_at: m.created_at,
          });
        }
      }
      if (candidates.length === 0) {
        stats.messages += messages;
        return;
      }
      const nodes = await deps.presence.nodesOf([...new Set(candidates.map((j) => j.user_id))]);
      const offline = candidates.filter((j) => (nodes.get(j.user_id) ?? []).length === 0);
      stats.online += candidates.length - offline.length;
      if (offline.length > 0) await deps.queue.enqueue(offline);
      stats.jobs += offline.length;
      stats.messages += messages;
    } catch (error) {
      for (const id of touched) cache.delete(id);
      throw error;
    }
  }

  /** Consumes until `signal` aborts. */
  const run = (signal: AbortSignal): Promise<void> => deps.bus.consume(deps.group ?? PUSH_GROUP, handle, { signal, batchSize: 200 });
  const lifecycle = background(run, (error) => deps.logger.error({ err: error }, 'push planner stopped'));

  return {
    handle,
    run,
    start: lifecycle.start,
    stop: lifecycle.stop,
    stats: () => ({ ...stats }),
  };
}

export type PushPlanner = ReturnType<typeof createPushPlanner>;
