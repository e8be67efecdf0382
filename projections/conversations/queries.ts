import { ContentType, MediaRef } from '../../domain/conversation/events.js';
import type { SqlClient } from '../../domain/ports/sql.js';
import type {
  ConversationQueries,
  HistoryMessage,
  InboxEntry,
  MessageRef,
  MessageStatus,
  ReactionSummary,
  RecipientStatus,
} from './views.js';

const iso = (value: unknown): string => (value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString());
const isoOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : iso(value));
const parseMedia = (value: unknown) => (value === null || value === undefined ? null : MediaRef.parse(typeof value === 'string' ? JSON.parse(value) : value));

type MessageRow = {
  message_id: string;
  conversation_id: string;
  sequence_number: number;
  sender_id: string;
  content: string;
  content_type: string;
  media: unknown;
  client_message_id: string | null;
  created_at: unknown;
};

export function createConversationQueries(db: SqlClient): ConversationQueries {
  async function reactionsOf(messageIds: string[]): Promise<Map<string, ReactionSummary[]>> {
    const out = new Map<string, ReactionSummary[]>();
    if (messageIds.length === 0) return out;
    const { rows } = await db.query<{ message_id: string; emoji: string; user_ids: string[] }>(
      `SELECT message_id, emoji, array_agg(user_id ORDER BY created_at, user_id) AS user_ids
       FROM rm_reactions WHERE message_id = ANY($1::text[])
       GROUP BY message_id, emoji ORDER BY message_id, min(created_at), emoji`,
      [messageIds],
    );
    for (const r of rows) {
      const list = out.get(r.message_id) ?? [];
      list.push({ emoji: r.emoji, count: r.user_ids.length, user_ids: r.user_ids });
      out.set(r.message_id, list);
    }
    return out;
  }

  async function messageRef(messageId: string): Promise<MessageRef | null> {
    const { rows } = await db.query<{ message_id: string; conversation_id: string; sequence_number: number; sender_id: string }>(
      'SELECT message_id, conversation_id, sequence_number, sender_id FROM rm_messages WHERE message_id = $1',
      [messageId],
    );
    const r = rows[0];
    return r ? { ...r, sequence_number: Number(r.sequence_number) } : null;
  }

  return {
    async inbox(userId, { limit }): Promise<InboxEntry[]> {
      const { rows } = await db.query<{
        conversation_id: string;
        kind: string;
        name: string | null;
        description: string | null;
        last_message_id: string | null;
        last_message_seq: number | null;
        last_message_sender: string | null;
        last_message_content: string | null;
        last_message_type: string | null;
        last_message_at: unknown;
        updated_at: unknown;
        read_up_to: number;
        unread_count: string | number;
        participants: { user_id: string; role: string }[];
      }>(
        `SELECT c.conversation_id, c.kind, c.name, c.description, c.last_message_id, c.last_message_seq,
                c.last_message_sender, c.last_message_content, c.last_message_type, c.last_message_at, c.updated_at,
                me.read_up_to,
                (SELECT count(*) FROM rm_messages m
                  WHERE m.conversation_id = c.conversation_id AND m.sequence_number > me.read_up_to AND m.sender_id <> me.user_id) AS unread_count,
                (SELECT json_agg(json_build_object('user_id', p.user_id, 'role', p.role) ORDER BY p.joined_version, p.user_id)
                   FROM rm_members p WHERE p.conversation_id = c.conversation_id AND p.active) AS participants
         FROM rm_members me JOIN rm_conversations c ON c.conversation_id = me.conversation_id
         WHERE me.user_id = $1 AND me.active
         ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.conversation_id
         LIMIT $2`,
        [userId, limit],
      );
      return rows.map((r) => ({
        conversation_id: r.conversation_id,
        type: r.kind === 'direct' ? 'one_on_one' : 'group',
        name: r.name,
        description: r.description,
        participants: (r.participants ?? []).map((p) => ({ user_id: p.user_id, role: p.role === 'admin' ? 'admin' : 'member' })),
        last_message:
          r.last_message_id === null
            ? null
            : {
                message_id: r.last_message_id,
                sender_id: r.last_message_sender ?? '',
                content: r.last_message_content ?? '',
                content_type: ContentType.parse(r.last_message_type),
                created_at: iso(r.last_message_at),
                sequence_number: Number(r.last_message_seq),
              },
        unread_count: Number(r.unread_count),
        read_up_to: Number(r.read_up_to),
        updated_at: iso(r.updated_at),
      }));
    },

    async contacts(userId, { limit }): Promise<string[]> {
      const { rows } = await db.query<{ user_id: string }>(
        `SELECT DISTINCT p.user_id
         FROM rm_members me JOIN rm_members p ON p.conversation_id = me.conversation_id AND p.active
         WHERE me.user_id = $1 AND me.active AND p.user_id <> $1
         ORDER BY p.user_id
         LIMIT $2`,
        [userId, limit],
      );
      return rows.map((r) => r.user_id);
    },

    async isContact(userId, otherId): Promise<boolean> {
      if (userId === otherId) return false;
      const { rows } = await db.query(
        `SELECT 1 FROM rm_members me JOIN rm_members p ON p.conversation_id = me.conversation_id AND p.active
         WHERE me.user_id = $1 AND me.active AND p.user_id = $2
         LIMIT 1`,
        [userId, otherId],
      );
      return rows.length > 0;
    },

    async memberships(userId, conversationIds) {
      const out = new Map<string, { version: number; membership: 'active' | 'former' | 'never' }>();
      if (conversationIds.length === 0) return out;
      const { rows } = await db.query<{ conversation_id: string; version: number; active: boolean | null }>(
        `SELECT c.conversation_id, c.version, m.active
         FROM rm_conversations c LEFT JOIN rm_members m ON m.conversation_id = c.conversation_id AND m.user_id = $1
         WHERE c.conversation_id = ANY($2::text[])`,
        [userId, [...conversationIds]],
      );
      for (const r of rows) {
        out.set(r.conversation_id, { version: Number(r.version), membership: r.active === null ? 'never' : r.active ? 'active' : 'former' });
      }
      return out;
    },

    async history(conversationId, { limit, beforeSequence }) {
      const { rows } = await db.query<MessageRow>(
        `SELECT message_id, conversation_id, sequence_number, sender_id, content, content_type, media, client_message_id, created_at
         FROM rm_messages WHERE conversation_id = $1 AND sequence_number < $2
         ORDER BY sequence_number DESC LIMIT $3`,
        [conversationId, beforeSequence ?? 2_147_483_647, limit + 1],
      );
      const hasMore = rows.length > limit;
      const page = rows.slice(0, limit).reverse();
      const reactions = await reactionsOf(page.map((r) => r.message_id));
      const messages: HistoryMessage[] = page.map((r) => ({
        message_id: r.message_id,
        conversation_id: r.conversation_id,
        sender_id: r.sender_id,
        content: r.content,
        content_type: ContentType.parse(r.content_type),
        media: parseMedia(r.media),
        client_message_id: r.client_message_id,
        created_at: iso(r.created_at),
        sequence_number: Number(r.sequence_number),
        reactions: reactions.get(r.message_id) ?? [],
      }));
      return { messages, has_more: hasMore };
    },

    messageRef,

    async messageStatus(messageId): Promise<MessageStatus | null> {
      const ref = await messageRef(messageId);
      if (!ref) return null;
      // Recipients: everyone who was a member when the message was sent, but its sender.
      const { rows } = await db.query<{ user_id: string; delivered_at: unknown; read_at: unknown }>(
        `SELECT m.user_id,
           (SELECT min(r.at) FROM rm_receipts r WHERE r.conversation_id = m.conversation_id AND r.user_id = m.user_id
              AND r.kind = 'delivered' AND r.up_to_version >= $2) AS delivered_at,
           (SELECT min(r.at) FROM rm_receipts r WHERE r.conversation_id = m.conversation_id AND r.user_id = m.user_id
              AND r.kind = 'read' AND r.up_to_version >= $2) AS read_at
         FROM rm_members m
         WHERE m.conversation_id = $1 AND m.user_id <> $3 AND m.joined_version < $2
           AND (m.left_version IS NULL OR m.left_version > $2)
         ORDER BY m.user_id`,
        [ref.conversation_id, ref.sequence_number, ref.sender_id],
      );
      const recipients: RecipientStatus[] = rows.map((r) => {
        const delivered_at = isoOrNull(r.delivered_at);
        const read_at = isoOrNull(r.read_at);
        return { user_id: r.user_id, status: read_at ? 'read' : delivered_at ? 'delivered' : 'sent', delivered_at, read_at };
      });
      const delivered = recipients.filter((r) => r.status !== 'sent').length;
      const read = recipients.filter((r) => r.status === 'read').length;
      const n = recipients.length;
      return {
        ...ref,
        status: n > 0 && read === n ? 'read' : n > 0 && delivered === n ? 'delivered' : 'sent',
        recipient_count: n,
        delivered_count: delivered,
        read_count: read,
        recipients,
      };
    },
  };
}
