import type { ConversationEvent } from '../../domain/conversation/events.js';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import type { SqlClient } from '../../domain/ports/sql.js';
import type { Projection } from '../runtime/runtime.js';
import { conversationIdOf } from '../../domain/conversation/stream.js';

/**
 * The `conversations` read model: the inbox (conversations, members, last message, watermarks),
 * message history with reactions, and receipts (when each member's delivered / read watermark
 * passed each version), from which message status is computed.
 *
 * One projection owns these tables so they move together in one transaction per batch: the inbox's
 * unread counts and the status of a message never disagree with the history they describe.
 */

export const CONVERSATIONS_PROJECTION = 'conversations';

const schema = `
CREATE TABLE IF NOT EXISTS rm_conversations (
  conversation_id text PRIMARY KEY,
  kind text NOT NULL,
  name text,
  description text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  version int NOT NULL,
  last_message_id text,
  last_message_seq int,
  last_message_sender text,
  last_message_content text,
  last_message_type text,
  last_message_at timestamptz,
  updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS rm_members (
  conversation_id text NOT NULL,
  user_id text NOT NULL,
  role text NOT NULL,
  active boolean NOT NULL,
  joined_version int NOT NULL,
  left_version int,
  delivered_up_to int NOT NULL DEFAULT 0,
  read_up_to int NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX IF NOT EXISTS rm_members_by_user ON rm_members (user_id, conversation_id);
CREATE TABLE IF NOT EXISTS rm_messages (
  message_id text PRIMARY KEY,
  conversation_id text NOT NULL,
  sequence_number int NOT NULL,
  sender_id text NOT NULL,
  content text NOT NULL,
  content_type text NOT NULL,
  media jsonb,
  client_message_id text,
  created_at timestamptz NOT NULL,
  UNIQUE (conversation_id, sequence_number)
);
CREATE TABLE IF NOT EXISTS rm_reactions (
  message_id text NOT NULL,
  user_id text NOT NULL,
  emoji text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (message_id, user_id, emoji)
);
CREATE TABLE IF NOT EXISTS rm_receipts (
  conversation_id text NOT NULL,
  user_id text NOT NULL,
  kind text NOT NULL,
  up_to_version int NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (conversation_id, user_id, kind, up_to_version)
);
`;

const PREVIEW_CHARS = 200;

type Parsed = { stored: StoredEvent; event: ConversationEvent };
type ReactionKey = string;

/**
 * The set-based work of a run of events: applied by a fixed number of statements, in an order
 * that gives exactly what applying the run's events one by one would give. A run holds a
 * ConversationCreated only before any other event of that conversation, so the run's events of
 * different tables commute: within one table only the order of events for the same key matters,
 * and that order is kept.
 *
 * Membership changes (MembersAdded, MemberRemoved) are applied one statement each, in log order,
 * right after the run's creations and before everything else. That equals log order because
 * nothing else in the run reads or writes what they change: they own rm_members' active, role,
 * joined_version and left_version; watermarks (the only other rm_members columns a run writes)
 * move by GREATEST on rows that exist before the run's watermark update (the decider accepts
 * marks only from members and former members, whose rows the creation or an earlier MembersAdded
 * wrote); and their effect on rm_conversations (version, updated_at) is folded into the run's one
 * conversation update (`touch`, below).
 */
class Pending {
  /** ConversationCreated, applied first (no earlier event of the run touches these conversations). */
  readonly created = new Set<string>();
  readonly creates: { version: number; data: Extract<ConversationEvent, { type: 'ConversationCreated' }>['data'] }[] = [];
  /** Conversations with any event in the run other than their ConversationCreated. */
  readonly touched = new Set<string>();
  readonly messages: { id: string; version: number; data: Extract<ConversationEvent, { type: 'MessageSent' }>['data'] }[] = [];
  /**
   * Per conversation: the version of its last event in the run, its last message if any, and the
   * latest time of a membership change after that message (updated_at moves to the later one).
   */
  readonly conversations = new Map<string, { version: number; message: number | null; touch: string | null; touchMs: number }>();
  /** MembersAdded and MemberRemoved, in log order. */
  readonly memberships: { stored: StoredEvent; event: Extract<ConversationEvent, { type: 'MembersAdded' | 'MemberRemoved' }> }[] = [];
  /** Per reaction key, in log order of its last event: the net effect of its adds and removes. */
  readonly reactions = new Map<ReactionKey, { message_id: string; user_id: string; emoji: string; removed: boolean; present: boolean; at: string | null }>();
  /** Per (conversation, user): the highest delivered and read watermarks of the run. */
  readonly watermarks = new Map<string, { conversation_id: string; user_id: string; delivered: number; read: number | null }>();
  /** Receipts, the first of each key only (the rest do nothing, as ON CONFLICT DO NOTHING would). */
  readonly receipts = new Map<string, { conversation_id: string; user_id: string; kind: string; up_to: number; at: string }>();
  size = 0;

  /** False when `id` already has an event in the run: its creation cannot be hoisted before them. */
  canCreate(id: string): boolean {
    return !this.touched.has(id) && !this.created.has(id);
  }

  bump(id: string, version: number, message: number | null = null, touchAt: string | null = null) {
    this.touched.add(id);
    let c = this.conversations.get(id);
    if (!c) this.conversations.set(id, (c = { version, message, touch: null, touchMs: -Infinity }));
    c.version = version;
    if (message !== null) {
      // A message sets updated_at: membership changes before it no longer matter.
      c.message = message;
      c.touch = null;
      c.touchMs = -Infinity;
    }
    if (touchAt !== null) {
      const ms = Date.parse(touchAt);
      if (ms > c.touchMs) {
        c.touch = touchAt;
        c.touchMs = ms;
      }
    }
  }

  add(p: Parsed) {
    this.size++;
    const { stored, event } = p;
    const version = stored.version;
    switch (event.type) {
      case 'ConversationCreated':
        this.created.add(event.data.conversation_id);
        this.creates.push({ version, data: event.data });
        return;
      case 'MessageSent': {
        const id = conversationOf(stored);
        this.messages.push({ id, version, data: event.data });
        this.bump(id, version, this.messages.length - 1);
        return;
      }
      case 'ReactionAdded':
      case 'ReactionRemoved': {
        const d = event.data;
        const key = JSON.stringify([d.message_id, d.user_id, d.emoji]);
        let r = this.reactions.get(key);
        if (!r) this.reactions.set(key, (r = { message_id: d.message_id, user_id: d.user_id, emoji: d.emoji, removed: false, present: false, at: null }));
        if (event.type === 'ReactionRemoved') {
          // Whatever was there is gone; a later add inserts afresh.
          r.removed = true;
          r.present = false;
          r.at = null;
        } else if (!r.present) {
          // The first add since the start of the run or the last remove: the row it inserts (or the
          // existing row, when nothing was removed in the run) is the one that stays.
          r.present = true;
          r.at = d.at;
        }
        this.bump(conversationOf(stored), version);
        return;
      }
      case 'Delivered':
      case 'Read': {
        const id = conversationOf(stored);
        const d = event.data;
        const isRead = event.type === 'Read';
        const key = JSON.stringify([id, d.user_id]);
        const w = this.watermarks.get(key);
        if (!w) this.watermarks.set(key, { conversation_id: id, user_id: d.user_id, delivered: d.up_to_version, read: isRead ? d.up_to_version : null });
        else {
          w.delivered = Math.max(w.delivered, d.up_to_version);
          if (isRead) w.read = Math.max(w.read ?? 0, d.up_to_version);
        }
        // Reading implies receiving: a Read records both receipts.
        for (const kind of isRead ? ['delivered', 'read'] : ['delivered']) {
          const rkey = JSON.stringify([id, d.user_id, kind, d.up_to_version]);
          if (!this.receipts.has(rkey)) this.receipts.set(rkey, { conversation_id: id, user_id: d.user_id, kind, up_to: d.up_to_version, at: d.at });
        }
        this.bump(id, version);
        return;
      }
      case 'MembersAdded':
      case 'MemberRemoved':
        this.memberships.push({ stored, event });
        this.bump(conversationOf(stored), version, null, event.type === 'MembersAdded' ? event.data.added_at : event.data.removed_at);
        return;
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  /**
   * Rows go to the database as one JSON text per statement (json_to_recordset), not one array per
   * column (unnest): JSON.stringify is native, while array literals are escaped element by element
   * in JavaScript (the rm_messages insert took half the time this way).
   */
  async flush(tx: SqlClient): Promise<void> {
    if (this.size === 0) return;
    if (this.creates.length > 0) {
      const cs = this.creates;
      await tx.query(
        `INSERT INTO rm_conversations (conversation_id, kind, name, description, created_by, created_at, version, updated_at)
         SELECT id, kind, name, description, created_by, at::timestamptz, version, at::timestamptz
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])
           AS u(id, kind, name, description, created_by, at, version)`,
        [
          cs.map((c) => c.data.conversation_id),
          cs.map((c) => c.data.kind),
          cs.map((c) => c.data.name),
          cs.map((c) => c.data.description),
          cs.map((c) => c.data.created_by),
          cs.map((c) => c.data.created_at),
          cs.map((c) => c.version),
        ],
      );
      const members = cs.flatMap((c) =>
        c.data.members.map((u) => ({ id: c.data.conversation_id, u, role: c.data.kind === 'group' && u === c.data.created_by ? 'admin' : 'member', version: c.version })),
      );
      await tx.query(
        `INSERT INTO rm_members (conversation_id, user_id, role, active, joined_version)
         SELECT id, u, role, true, version FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS m(id, u, role, version)`,
        [members.map((m) => m.id), members.map((m) => m.u), members.map((m) => m.role), members.map((m) => m.version)],
      );
    }
    for (const m of this.memberships) await applyMembership(tx, m.stored, m.event);
    if (this.messages.length > 0) {
      const ms = this.messages;
      await tx.query(
        `INSERT INTO rm_messages (message_id, conversation_id, sequence_number, sender_id, content, content_type, media, client_message_id, created_at)
         SELECT message_id, conversation_id, seq, sender_id, content, content_type, media::jsonb, client_message_id, at::timestamptz
         FROM json_to_recordset($1::json)
           AS u(message_id text, conversation_id text, seq int, sender_id text, content text, content_type text, media json, client_message_id text, at text)`,
        [
          JSON.stringify(
            ms.map((m) => ({
              message_id: m.data.message_id,
              conversation_id: m.id,
              seq: m.version,
              sender_id: m.data.sender_id,
              content: m.data.content,
              content_type: m.data.content_type,
              media: m.data.media,
              client_message_id: m.data.client_message_id,
              at: m.data.created_at,
            })),
          ),
        ],
      );
    }
    if (this.conversations.size > 0) {
      // The last event sets the version; the last message (if any) sets updated_at and the preview.
      const rows = [];
      for (const [id, c] of this.conversations) {
        const m = c.message === null ? null : this.messages[c.message]!;
        rows.push({
          id,
          version: c.version,
          message_id: m?.data.message_id ?? null,
          seq: m?.version ?? null,
          sender_id: m?.data.sender_id ?? null,
          content: m ? m.data.content.slice(0, PREVIEW_CHARS) : null,
          content_type: m?.data.content_type ?? null,
          at: m?.data.created_at ?? null,
          touch: c.touch,
        });
      }
      // updated_at: the last message's time, or what it was; a later membership change moves it
      // forward (GREATEST ignores NULL).
      await tx.query(
        `UPDATE rm_conversations c SET version = u.version,
           updated_at = GREATEST(COALESCE(u.at::timestamptz, c.updated_at), u.touch::timestamptz),
           last_message_id = COALESCE(u.message_id, c.last_message_id),
           last_message_seq = COALESCE(u.seq, c.last_message_seq),
           last_message_sender = COALESCE(u.sender_id, c.last_message_sender),
           last_message_content = COALESCE(u.content, c.last_message_content),
           last_message_type = COALESCE(u.content_type, c.last_message_type),
           last_message_at = COALESCE(u.at::timestamptz, c.last_message_at)
         FROM json_to_recordset($1::json)
           AS u(id text, version int, message_id text, seq int, sender_id text, content text, content_type text, at text, touch text)
         WHERE c.conversation_id = u.id`,
        [JSON.stringify(rows)],
      );
    }
    if (this.reactions.size > 0) {
      const rs = [...this.reactions.values()];
      // A key removed in the run loses its row; one whose last event is an add then gets the row
      // of its first add since the last remove (or, never removed, keeps the row it had).
      const removed = rs.filter((r) => r.removed);
      if (removed.length > 0) {
        await tx.query(
          `DELETE FROM rm_reactions r USING json_to_recordset($1::json) AS u(message_id text, user_id text, emoji text)
           WHERE r.message_id = u.message_id AND r.user_id = u.user_id AND r.emoji = u.emoji`,
          [JSON.stringify(removed)],
        );
      }
      const present = rs.filter((r) => r.present);
      if (present.length > 0) {
        await tx.query(
          `INSERT INTO rm_reactions (message_id, user_id, emoji, created_at)
           SELECT message_id, user_id, emoji, at::timestamptz FROM json_to_recordset($1::json) AS u(message_id text, user_id text, emoji text, at text)
           ON CONFLICT DO NOTHING`,
          [JSON.stringify(present)],
        );
      }
    }
    if (this.watermarks.size > 0) {
      const ws = [...this.watermarks.values()];
      await tx.query(
        `UPDATE rm_members m SET delivered_up_to = GREATEST(m.delivered_up_to, u.delivered),
           read_up_to = GREATEST(m.read_up_to, u.read)
         FROM json_to_recordset($1::json) AS u(conversation_id text, user_id text, delivered int, read int)
         WHERE m.conversation_id = u.conversation_id AND m.user_id = u.user_id`,
        [JSON.stringify(ws)],
      );
    }
    if (this.receipts.size > 0) {
      const rs = [...this.receipts.values()];
      await tx.query(
        `INSERT INTO rm_receipts (conversation_id, user_id, kind, up_to_version, at)
         SELECT conversation_id, user_id, kind, up_to, at::timestamptz
         FROM json_to_recordset($1::json) AS u(conversation_id text, user_id text, kind text, up_to int, at text)
         ON CONFLICT DO NOTHING`,
        [JSON.stringify(rs)],
      );
    }
  }
}

/**
 * Membership changes, rare: one statement each, in log order, inside the run's flush (see
 * Pending). Their effect on rm_conversations (version, updated_at) is in the run's update.
 */
async function applyMembership(tx: SqlClient, stored: StoredEvent, event: Extract<ConversationEvent, { type: 'MembersAdded' | 'MemberRemoved' }>): Promise<void> {
  const version = stored.version;
  const id = conversationOf(stored);
  if (event.type === 'MembersAdded') {
    await tx.query(
      `INSERT INTO rm_members (conversation_id, user_id, role, active, joined_version)
       SELECT $1, u, 'member', true, $3 FROM unnest($2::text[]) AS u
       ON CONFLICT (conversation_id, user_id)
       DO UPDATE SET active = true, role = 'member', joined_version = EXCLUDED.joined_version, left_version = NULL`,
      [id, event.data.user_ids, version],
    );
    return;
  }
  // One statement: every part reads the table as it was before it, so "the members after the
  // removal" is "the active members but $2". Same rule as the decider: when the admin leaves and
  // no admin remains, the longest-standing member becomes admin (a group never stays without one).
  await tx.query(
    `WITH removed AS (
       SELECT role FROM rm_members WHERE conversation_id = $1 AND user_id = $2
     ), gone AS (
       UPDATE rm_members SET active = false, left_version = $3, role = 'member' WHERE conversation_id = $1 AND user_id = $2
     )
     UPDATE rm_members SET role = 'admin'
     WHERE conversation_id = $1 AND active AND user_id <> $2
       AND EXISTS (SELECT 1 FROM removed WHERE role = 'admin')
       AND NOT EXISTS (SELECT 1 FROM rm_members WHERE conversation_id = $1 AND active AND role = 'admin' AND user_id <> $2)
       AND user_id = (SELECT user_id FROM rm_members WHERE conversation_id = $1 AND active AND user_id <> $2 ORDER BY joined_version, user_id LIMIT 1)`,
    [id, event.data.user_id, version],
  );
}

function conversationOf(stored: StoredEvent): string {
  const id = conversationIdOf(stored.stream_id);
  if (id === null) throw new Error(`stream ${stored.stream_id} is not a conversation stream`);
  return id;
}

export const conversationsProjection: Projection = {
  name: CONVERSATIONS_PROJECTION,
  schema,
  tables: ['rm_receipts', 'rm_reactions', 'rm_messages', 'rm_members', 'rm_conversations'],
  /**
   * Set-based: the batch is parsed first, then applied as one run (cut only at a
   * ConversationCreated of a conversation the run already touched, which the log never holds):
   * at most eight statements per run, plus one per membership change. The result is exactly that
   * of applying the events one by one in log order (projection.int.spec.ts checks both).
   */
  async apply(tx, events) {
    let pending = new Pending();
    for (const { stored, event } of events) {
      if (event === null) continue; // not a conversation stream
      const p: Parsed = { stored, event };
      if (event.type === 'ConversationCreated' && !pending.canCreate(event.data.conversation_id)) {
        await pending.flush(tx);
        pending = new Pending();
      }
      pending.add(p);
    }
    await pending.flush(tx);
  },
};
