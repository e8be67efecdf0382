import type { ConversationEvent } from './events.js';
import { safeParseConversationEvent } from './upcast.js';

/**
 * Who receives each event of a conversation: the one rule shared by live delivery
 * (delivery/worker.ts) and the replay of a Sync (ws/sync.ts), so the two never disagree.
 *
 * - ConversationCreated, MembersAdded: the members after the event (an added member receives
 *   events from its MembersAdded on).
 * - MemberRemoved: the members before the event (the removed member gets its own removal, then
 *   nothing more).
 * - MessageSent, ReactionAdded / ReactionRemoved: every member.
 * - Delivered / Read (watermarks): the reader's own user (all their devices: another device of
 *   the reader learns what was read elsewhere) and the senders of the messages the watermark
 *   newly covers: versions above the reader's previous watermark of that kind, up to the new one.
 *   A receipt that moves no user watermark (another device catching up) reaches the reader only.
 *
 * previous_version of each event is the version of the last event before it that went to every
 * member (any non-receipt event).
 *
 * The tracked state is small: kind and name, members, message senders by version, per-user
 * watermarks.
 */
export type TrackedConversation = {
  conversationId: string;
  /** Version of the last event folded in. */
  version: number;
  active: boolean;
  /** From the ConversationCreated (what a push notification names). */
  kind: 'direct' | 'group';
  name: string | null;
  members: Set<string>;
  /** Message versions and their senders, ascending by version. */
  messageVersions: number[];
  messageSenders: string[];
  /**
   * One instance of each sender id, which messageSenders refers to: each parsed event brings its
   * own copy of the string, and keeping that copy per message cost 75 B per message of history
   * against 19 B this way (`npm run bench:state`; delivery caches up to 10,000 such folds).
   */
  senderIds: Map<string, string>;
  watermarks: Map<string, { delivered: number; read: number }>;
  /** The version of the last non-receipt event (previous_version for the next event). */
  lastBroadcast: number;
};

export type Routed = {
  event: ConversationEvent;
  recipients: string[];
  previousVersion: number;
};

export const emptyTracked = (conversationId: string): TrackedConversation => ({
  conversationId,
  version: 0,
  active: false,
  kind: 'direct',
  name: null,
  members: new Set(),
  messageVersions: [],
  messageSenders: [],
  senderIds: new Map(),
  watermarks: new Map(),
  lastBroadcast: 0,
});

/** First index whose version is > v. */
function upperBound(versions: number[], v: number): number {
  let lo = 0;
  let hi = versions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (versions[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function interned(t: TrackedConversation, id: string): string {
  const known = t.senderIds.get(id);
  if (known !== undefined) return known;
  t.senderIds.set(id, id);
  return id;
}

/** Senders of messages with version in (after, upTo], distinct. */
function sendersBetween(t: TrackedConversation, after: number, upTo: number): Set<string> {
  const out = new Set<string>();
  for (let i = upperBound(t.messageVersions, after); i < t.messageVersions.length && t.messageVersions[i]! <= upTo; i++) {
    out.add(t.messageSenders[i]!);
  }
  return out;
}

/**
 * Routes one stored event (its `version` must be `t.version + 1`) and folds it into `t`.
 * Returns null for an event the domain schema refuses (logged by the caller; it still advances the version).
 */
export function routeAndFold(t: TrackedConversation, stored: { type: string; data: unknown; version: number; metadata?: Record<string, unknown> }): Routed | null {
  const parsed = safeParseConversationEvent(stored);
  const version = stored.version;
  if (!parsed.success) {
    t.version = version;
    return null;
  }
  const event = parsed.data;
  const previousVersion = t.lastBroadcast;
  let recipients: string[];
  switch (event.type) {
    case 'ConversationCreated':
      t.active = true;
      t.kind = event.data.kind;
      t.name = event.data.name;
      t.members = new Set(event.data.members);
      recipients = [...t.members];
      break;
    case 'MembersAdded':
      for (const id of event.data.user_ids) t.members.add(id);
      recipients = [...t.members];
      break;
    case 'MemberRemoved':
      recipients = [...t.members];
      t.members.delete(event.data.user_id);
      break;
    case 'MessageSent':
      t.messageVersions.push(version);
      t.messageSenders.push(interned(t, event.data.sender_id));
      recipients = [...t.members];
      break;
    case 'ReactionAdded':
    case 'ReactionRemoved':
      recipients = [...t.members];
      break;
    case 'Delivered':
    case 'Read': {
      const d = event.data;
      const w = t.watermarks.get(d.user_id) ?? { delivered: 0, read: 0 };
      const before = event.type === 'Read' ? w.read : w.delivered;
      const to = new Set<string>([d.user_id]);
      if (d.up_to_version > before) for (const s of sendersBetween(t, before, d.up_to_version)) if (t.members.has(s)) to.add(s);
      w.delivered = Math.max(w.delivered, d.up_to_version);
      if (event.type === 'Read') w.read = Math.max(w.read, d.up_to_version);
      t.watermarks.set(d.user_id, w);
      recipients = [...to];
      break;
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
  t.version = version;
  if (event.type !== 'Delivered' && event.type !== 'Read') t.lastBroadcast = version;
  return { event, recipients, previousVersion };
}
