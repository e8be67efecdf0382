import { z } from 'zod';
import { MAX_CLIENT_MESSAGE_ID_CHARS, MAX_DESCRIPTION_CHARS, MAX_EMOJI_CHARS, MAX_GROUP_NAME_CHARS, MAX_ID_CHARS } from '../fields.js';
import { ContentType, Id, MediaRef, MAX_GROUP_MEMBERS } from './events.js';

/**
 * Commands on one conversation. The acting user, ids and time come in with the command (the
 * decider has no clock and no random): `metadata.now` is an ISO-8601 timestamp.
 */
const Metadata = z.object({ now: z.string() });

export const CreateDirectConversation = z.object({
  type: z.literal('CreateDirectConversation'),
  data: z.object({ conversation_id: Id, actor: Id, participant_id: Id }),
  metadata: Metadata,
});

export const CreateGroup = z.object({
  type: z.literal('CreateGroup'),
  data: z.object({
    conversation_id: Id,
    actor: Id,
    name: z.string().trim().min(1).max(MAX_GROUP_NAME_CHARS),
    description: z.string().max(MAX_DESCRIPTION_CHARS).nullable(),
    member_ids: z.array(Id).max(MAX_GROUP_MEMBERS),
  }),
  metadata: Metadata,
});

export const AddMembers = z.object({
  type: z.literal('AddMembers'),
  data: z.object({ actor: Id, user_ids: z.array(Id).min(1).max(MAX_GROUP_MEMBERS) }),
  metadata: Metadata,
});

/** actor === user_id means "leave". */
export const RemoveMember = z.object({
  type: z.literal('RemoveMember'),
  data: z.object({ actor: Id, user_id: Id }),
  metadata: Metadata,
});

export const SendMessage = z.object({
  type: z.literal('SendMessage'),
  data: z.object({
    actor: Id,
    message_id: Id,
    content: z.string(),
    content_type: ContentType,
    media: MediaRef.nullable(),
    client_message_id: z.string().min(1).max(MAX_CLIENT_MESSAGE_ID_CHARS).nullable(),
  }),
  metadata: Metadata,
});

const ReactionCommandData = z.object({
  actor: Id,
  message_id: Id,
  message_version: z.number().int().positive(),
  emoji: z.string().min(1).max(MAX_EMOJI_CHARS),
  /**
   * The message_id of the MessageSent the store holds at message_version, or null when that
   * version is no message (or past the stream's end), as the caller read it before the command.
   */
  stored_message_id: Id.nullable(),
});
export const AddReaction = z.object({ type: z.literal('AddReaction'), data: ReactionCommandData, metadata: Metadata });
export const RemoveReaction = z.object({ type: z.literal('RemoveReaction'), data: ReactionCommandData, metadata: Metadata });

const WatermarkCommandData = z.object({
  actor: Id,
  device_id: z.string().min(1).max(MAX_ID_CHARS),
  up_to_version: z.number().int().positive(),
});
export const MarkDelivered = z.object({ type: z.literal('MarkDelivered'), data: WatermarkCommandData, metadata: Metadata });
export const MarkRead = z.object({ type: z.literal('MarkRead'), data: WatermarkCommandData, metadata: Metadata });

export const ConversationCommand = z.discriminatedUnion('type', [
  CreateDirectConversation,
  CreateGroup,
  AddMembers,
  RemoveMember,
  SendMessage,
  AddReaction,
  RemoveReaction,
  MarkDelivered,
  MarkRead,
]);
export type ConversationCommand = z.infer<typeof ConversationCommand>;
export type CommandOf<T extends ConversationCommand['type']> = Extract<ConversationCommand, { type: T }>;
