import { z } from 'zod';
import {
  MAX_CLIENT_MESSAGE_ID_CHARS,
  MAX_DESCRIPTION_CHARS,
  MAX_EMOJI_CHARS,
  MAX_GROUP_NAME_CHARS,
  MAX_ID_CHARS,
  MAX_MIME_TYPE_CHARS,
  MAX_STORED_FILE_NAME_CHARS,
} from '../fields.js';

/**
 * The events of one conversation stream. Every conversation is one stream; the stream version of
 * an event is its position in the conversation, and the version of a MessageSent event is that
 * message's sequence_number.
 *
 * Events are facts: past tense, never changed once written. A schema change adds an optional
 * field or a new event type (see ARCHITECTURE.md, "Event versioning").
 */

export const MAX_GROUP_MEMBERS = 256;

/** As stored: the edges check more (domain/fields.ts); these schemas read what older versions stored too. */
export const Id = z.string().min(1).max(MAX_ID_CHARS);
export const ContentType = z.enum(['text', 'image', 'video', 'file']);
export type ContentType = z.infer<typeof ContentType>;

export const MediaRef = z.object({
  media_id: Id,
  mime_type: z.string().min(1).max(MAX_MIME_TYPE_CHARS).optional(),
  size_bytes: z.number().int().nonnegative().optional(),
  file_name: z.string().max(MAX_STORED_FILE_NAME_CHARS).optional(),
});
export type MediaRef = z.infer<typeof MediaRef>;

export const ConversationCreated = z.object({
  type: z.literal('ConversationCreated'),
  data: z.object({
    conversation_id: Id,
    kind: z.enum(['direct', 'group']),
    created_by: Id,
    /** Every member at creation, the creator included. */
    members: z.array(Id).min(1).max(MAX_GROUP_MEMBERS),
    name: z.string().max(MAX_GROUP_NAME_CHARS).nullable(),
    description: z.string().max(MAX_DESCRIPTION_CHARS).nullable(),
    created_at: z.string(),
  }),
});

export const MembersAdded = z.object({
  type: z.literal('MembersAdded'),
  data: z.object({ user_ids: z.array(Id).min(1), added_by: Id, added_at: z.string() }),
});

/** removed_by === user_id means the member left. */
export const MemberRemoved = z.object({
  type: z.literal('MemberRemoved'),
  data: z.object({ user_id: Id, removed_by: Id, removed_at: z.string() }),
});

export const MessageSent = z.object({
  type: z.literal('MessageSent'),
  data: z.object({
    message_id: Id,
    sender_id: Id,
    content: z.string(),
    content_type: ContentType,
    media: MediaRef.nullable(),
    client_message_id: z.string().max(MAX_CLIENT_MESSAGE_ID_CHARS).nullable(),
    created_at: z.string(),
  }),
});

const ReactionData = z.object({
  message_id: Id,
  /** The sequence_number of the message reacted to. */
  message_version: z.number().int().positive(),
  user_id: Id,
  emoji: z.string().min(1).max(MAX_EMOJI_CHARS),
  at: z.string(),
});
export const ReactionAdded = z.object({ type: z.literal('ReactionAdded'), data: ReactionData });
export const ReactionRemoved = z.object({ type: z.literal('ReactionRemoved'), data: ReactionData });

/** A watermark: "user U, device D, has received / read every message up to version V". */
const WatermarkData = z.object({
  user_id: Id,
  device_id: z.string().min(1).max(MAX_ID_CHARS),
  up_to_version: z.number().int().positive(),
  at: z.string(),
});
export const Delivered = z.object({ type: z.literal('Delivered'), data: WatermarkData });
export const Read = z.object({ type: z.literal('Read'), data: WatermarkData });

export const ConversationEvent = z.discriminatedUnion('type', [
  ConversationCreated,
  MembersAdded,
  MemberRemoved,
  MessageSent,
  ReactionAdded,
  ReactionRemoved,
  Delivered,
  Read,
]);
export type ConversationEvent = z.infer<typeof ConversationEvent>;
export type ConversationEventType = ConversationEvent['type'];
export type EventOf<T extends ConversationEventType> = Extract<ConversationEvent, { type: T }>;
export const CONVERSATION_EVENT_TYPES = ConversationEvent.options.map((o) => o.shape.type.value);
