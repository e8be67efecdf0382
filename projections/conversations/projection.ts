import { ConversationEvent } from '../../domain/conversation/events.js';
import type { StoredEvent } from '../../infra/event-store/port.js';
import type { SqlClient } from '../../infra/sql/port.js';
import type { Projection } from '../runtime.js';

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

async function applyOne(tx: SqlClient, stored: StoredEvent): Promise<void> {
  const event = ConversationEvent.parse({ type: stored.type, data: stored.data });
  const version = stored.version;
  switch (event.type) {
    case 'ConversationCreated': {
      const d = event.data;
      await tx.query(
        `INSERT INTO rm_conversations (conversation_id, kind, name, description, created_by, created_at, version, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6)`,
        [d.conversation_id, d.kind, d.name, d.description, d.created_by, d.created_at, version],
      );
      await tx.query(
        `INSERT INTO rm_members (conversation_id, user_id, role, active, joined_version)
         SELECT $1, u, CASE WHEN $3::text = 'group' AND u = $4 THEN 'admin' ELSE 'member' END, true, $5
         FROM unnest($2::text[]) AS u`,
        [d.conversation_id, d.members, d.kind, d.created_by, version],
      );
      return;
    }
    case 'MembersAdded': {
      const id = conversationOf(stored);
      await tx.query(
        `INSERT INTO rm_members (conversation_id, user_id, role, active, joined_version)
         SELECT $1, u, 'member', true, $3 FROM unnest($2::text[]) AS u
         ON CONFLICT (conversation_id, user_id)
         DO UPDATE SET active = true, role = 'member', joined_version = EXCLUDED.joined_version, left_version = NULL`,
        [id, event.data.user_ids, version],
      );
      await touch(tx, id, version, event.data.added_at);
      return;
    }
    case 'MemberRemoved': {
      const id = conversationOf(stored);
      const { rows } = await tx.query<{ role: string }>('SELECT role FROM rm_members WHERE conversation_id = $1 AND user_id = $2', [
        id,
        event.data.user_id,
      ]);
      await tx.query(`UPDATE rm_members SET active = false, left_version = $3, role = 'member' WHERE conversation_id = $1 AND user_id = $2`, [
        id,
        event.data.user_id,
        version,
      ]);
      // Same rule as the decider: a group never stays without an admin.
      if (rows[0]?.role === 'admin') {
        await tx.query(
          `UPDATE rm_members SET role = 'admin'
           WHERE conversation_id = $1 AND active
             AND NOT EXISTS (SELECT 1 FROM rm_members WHERE conversation_id = $1 AND active AND role = 'admin')
             AND user_id = (SELECT user_id FROM rm_members WHERE conversation_id = $1 AND active ORDER BY joined_version, user_id LIMIT 1)`,
          [id],
        );
      }
      await touch(tx, id, version, event.data.removed_at);
      return;
    }
    case 'MessageSent': {
      const id = conversationOf(stored);
      const d = event.data;
      await tx.query(
        `INSERT INTO rm_messages (message_id, conversation_id, sequence_number, sender_id, content, content_type, media, client_message_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [d.message_id, id, version, d.sender_id, d.content, d.content_type, d.media === null ? null : JSON.stringify(d.media), d.client_message_id, d.created_at],
      );
      await tx.query(
        `UPDATE rm_conversations SET version = $2, updated_at = $3, last_message_id = $4, last_message_seq = $2,
           last_message_sender = $5, last_message_content = $6, last_message_type = $7, last_message_at = $3
         WHERE conversation_id = $1`,
        [id, version, d.created_at, d.message_id, d.sender_id, d.content.slice(0, PREVIEW_CHARS), d.content_type],
      );
      return;
    }
    case 'ReactionAdded':
      await tx.query(
        `INSERT INTO rm_reactions (message_id, user_id, emoji, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        [event.data.message_id, event.data.user_id, event.data.emoji, event.data.at],
      );
      await touchVersion(tx, conversationOf(stored), version);
      return;
    case 'ReactionRemoved':
      await tx.query(`DELETE FROM rm_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3`, [
        event.data.message_id,
        event.data.user_id,
        event.data.emoji,
      ]);
      await touchVersion(tx, conversationOf(stored), version);
      return;
    case 'Delivered':
    case 'Read': {
      const id = conversationOf(stored);
      const d = event.data;
      const isRead = event.type === 'Read';
      await tx.query(
        `UPDATE rm_members SET delivered_up_to = GREATEST(delivered_up_to, $3),
           read_up_to = CASE WHEN $4::boolean THEN GREATEST(read_up_to, $3) ELSE read_up_to END
         WHERE conversation_id = $1 AND user_id = $2`,
        [id, d.user_id, d.up_to_version, isRead],
      );
      // Reading implies receiving: a Read records both receipts.
      const kinds = isRead ? ['delivered', 'read'] : ['delivered'];
      await tx.query(
        `INSERT INTO rm_receipts (conversation_id, user_id, kind, up_to_version, at)
         SELECT $1, $2, k, $3, $4 FROM unnest($5::text[]) AS k ON CONFLICT DO NOTHING`,
        [id, d.user_id, d.up_to_version, d.at, kinds],
      );
      await touchVersion(tx, id, version);
      return;
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

function conversationOf(stored: StoredEvent): string {
  const prefix = 'conversation-';
  if (!stored.stream_id.startsWith(prefix)) throw new Error(`stream ${stored.stream_id} is not a conversation stream`);
  return stored.stream_id.slice(prefix.length);
}

const touch = (tx: SqlClient, id: string, version: number, at: string) =>
  tx.query('UPDATE rm_conversations SET version = $2, updated_at = GREATEST(updated_at, $3::timestamptz) WHERE conversation_id = $1', [id, version, at]);
const touchVersion = (tx: SqlClient, id: string, version: number) =>
  tx.query('UPDATE rm_conversations SET version = $2 WHERE conversation_id = $1', [id, version]);

export const conversationsProjection: Projection = {
  name: CONVERSATIONS_PROJECTION,
  schema,
  tables: ['rm_receipts', 'rm_reactions', 'rm_messages', 'rm_members', 'rm_conversations'],
  async apply(tx, events) {
    for (const event of events) {
      if (!event.stream_id.startsWith('conversation-')) continue;
      await applyOne(tx, event);
    }
  },
};
