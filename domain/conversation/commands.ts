import type { ContentType, MediaRef } from './events.js';

/**
 * Commands on one conversation, as plain typed objects. The acting user, ids and time come in
 * with the command (the decider has no clock and no random): `metadata.now` is an ISO-8601
 * timestamp.
 *
 * They are types, not schemas: a command is built inside the process (commands/conversations.ts)
 * from values the edges have already validated against the field rules (domain/fields.ts: REST
 * schemas, WebSocket frame schemas), so parsing it again would be a second parse of the same
 * values; the decider enforces what is the domain's (membership, admins, group size, reaction
 * rules, idempotency). Events, which are read back from the store and the bus, keep their schemas
 * (events.ts).
 */
type Metadata = { now: string };
type Command<T extends string, D> = { type: T; data: D; metadata: Metadata };

export type CreateDirectConversation = Command<'CreateDirectConversation', { conversation_id: string; actor: string; participant_id: string }>;

export type CreateGroup = Command<
  'CreateGroup',
  { conversation_id: string; actor: string; name: string; description: string | null; member_ids: string[] }
>;

export type AddMembers = Command<'AddMembers', { actor: string; user_ids: string[] }>;

/** actor === user_id means "leave". */
export type RemoveMember = Command<'RemoveMember', { actor: string; user_id: string }>;

export type SendMessage = Command<
  'SendMessage',
  {
    actor: string;
    message_id: string;
    content: string;
    content_type: ContentType;
    media: MediaRef | null;
    client_message_id: string | null;
  }
>;

type ReactionCommandData = {
  actor: string;
  message_id: string;
  message_version: number;
  emoji: string;
  /**
   * The message_id of the MessageSent the store holds at message_version, or null when that
   * version is no message (or past the stream's end), as the caller read it before the command.
   */
  stored_message_id: string | null;
};
export type AddReaction = Command<'AddReaction', ReactionCommandData>;
export type RemoveReaction = Command<'RemoveReaction', ReactionCommandData>;

type WatermarkCommandData = { actor: string; device_id: string; up_to_version: number };
export type MarkDelivered = Command<'MarkDelivered', WatermarkCommandData>;
export type MarkRead = Command<'MarkRead', WatermarkCommandData>;

export type ConversationCommand =
  | CreateDirectConversation
  | CreateGroup
  | AddMembers
  | RemoveMember
  | SendMessage
  | AddReaction
  | RemoveReaction
  | MarkDelivered
  | MarkRead;
export type CommandOf<T extends ConversationCommand['type']> = Extract<ConversationCommand, { type: T }>;
