import type { ContentType, MediaRef } from '../../domain/conversation/events.js';

/** Views served by the `conversations` read model (projection-backed REST reads). */

export type ReactionSummary = { emoji: string; count: number; user_ids: string[] };

export type HistoryMessage = {
  message_id: string;
  conversation_id: string;
  sender_id: string;
  content: string;
  content_type: ContentType;
  media: MediaRef | null;
  client_message_id: string | null;
  created_at: string;
  sequence_number: number;
  reactions: ReactionSummary[];
};

export type HistoryPage = { messages: HistoryMessage[]; has_more: boolean };

export type InboxEntry = {
  conversation_id: string;
  type: 'one_on_one' | 'group';
  name: string | null;
  description: string | null;
  participants: { user_id: string; role: 'admin' | 'member' }[];
  last_message: {
    message_id: string;
    sender_id: string;
    content: string;
    content_type: ContentType;
    created_at: string;
    sequence_number: number;
  } | null;
  unread_count: number;
  read_up_to: number;
  updated_at: string;
};

export type RecipientStatus = {
  user_id: string;
  status: 'sent' | 'delivered' | 'read';
  delivered_at: string | null;
  read_at: string | null;
};

export type MessageStatus = {
  message_id: string;
  conversation_id: string;
  sequence_number: number;
  sender_id: string;
  /** 'read' when every recipient has read it, 'delivered' when every one has received it. */
  status: 'sent' | 'delivered' | 'read';
  recipient_count: number;
  delivered_count: number;
  read_count: number;
  recipients: RecipientStatus[];
};

export type MessageRef = { message_id: string; conversation_id: string; sequence_number: number; sender_id: string };

/** Contacts a query returns at most (a user in many big groups: presence beyond them is not pushed). */
export const MAX_CONTACTS = 50_000;

export interface ConversationQueries {
  inbox(userId: string, options: { limit: number }): Promise<InboxEntry[]>;
  /**
   * The users who share an active membership of a conversation with `userId` (its contacts:
   * whom its presence goes to), distinct, sorted, at most `limit`. Much lighter than the inbox:
   * the gateway asks it for every connection it opens.
   */
  contacts(userId: string, options: { limit: number }): Promise<string[]>;
  /** Whether `otherId` is a contact of `userId` (one lookup, for a single check). */
  isContact(userId: string, otherId: string): Promise<boolean>;
  /**
   * The user's membership in each of these conversations the read model knows (absent: unknown to
   * it), with the conversation's version it has applied: one statement for the whole list (the
   * command side's MembershipIndex, asked before reading streams for someone who may be a stranger).
   */
  memberships(userId: string, conversationIds: readonly string[]): Promise<Map<string, { version: number; membership: 'active' | 'former' | 'never' }>>;
  /** Messages in ascending sequence_number: the `limit` latest below `beforeSequence` (or the latest). */
  history(conversationId: string, options: { limit: number; beforeSequence?: number }): Promise<HistoryPage>;
  messageRef(messageId: string): Promise<MessageRef | null>;
  messageStatus(messageId: string): Promise<MessageStatus | null>;
}
