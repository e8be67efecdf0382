import { z } from 'zod';

/**
 * Zod schemas shared by the route plugins: the request fields that are the API's own, and the
 * bodies it returns. Field rules (ids, text, versions, dates) are domain/fields.ts, shared with
 * the WebSocket gateway.
 */

export { Id } from '../../domain/fields.js';

/**
 * An integer query parameter from `min` to `max`: decimal digits only (`1e2`, `0x10`, `NaN`,
 * `Infinity`, `-1` and `1.5` are refused, naming the parameter).
 */
export const QueryInteger = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,16}$/, `expected an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `expected an integer from ${min} to ${max}`).max(max, `expected an integer from ${min} to ${max}`));

export const Limit = (fallback: number, max: number) => QueryInteger(1, max).default(fallback);

export const ContentType = z.enum(['text', 'image', 'video', 'file']);

export const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export const Participant = z.object({ user_id: z.string(), role: z.enum(['admin', 'member']) });

export const DirectConversationBody = z.object({
  conversation_id: z.string(),
  type: z.literal('one_on_one'),
  participants: z.array(Participant),
  created_at: z.string(),
});

export const GroupBody = z.object({
  group_id: z.string(),
  conversation_id: z.string(),
  type: z.literal('group'),
  name: z.string().nullable(),
  description: z.string().nullable(),
  participants: z.array(Participant),
  created_by: z.string(),
  created_at: z.string(),
});

/** A message's media: what was uploaded, and its thumbnail (a presigned URL once ready). */
export const MediaBody = z.object({
  media_id: z.string(),
  mime_type: z.string().nullable(),
  size_bytes: z.number().int().nullable(),
  file_name: z.string().nullable(),
  thumbnail: z.object({
    status: z.enum(['ready', 'pending', 'none']),
    url: z.string().nullable(),
    expires_at: z.string().nullable(),
    mime_type: z.string().nullable(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    reason: z.string().nullable(),
  }),
});

export const MessageBody = z.object({
  message_id: z.string(),
  conversation_id: z.string(),
  sender_id: z.string(),
  content: z.string(),
  content_type: ContentType,
  /** null for text; absent where a route does not describe media. */
  media: MediaBody.nullable().optional(),
  created_at: z.string(),
  sequence_number: z.number().int(),
  client_message_id: z.string().nullable(),
});

export const ReactionSummary = z.object({ emoji: z.string(), count: z.number().int(), user_ids: z.array(z.string()) });

export const HistoryMessageBody = MessageBody.extend({ reactions: z.array(ReactionSummary) });

export const InboxEntryBody = z.object({
  conversation_id: z.string(),
  type: z.enum(['one_on_one', 'group']),
  name: z.string().nullable(),
  description: z.string().nullable(),
  participants: z.array(Participant),
  last_message: z
    .object({
      message_id: z.string(),
      sender_id: z.string(),
      content: z.string(),
      content_type: ContentType,
      created_at: z.string(),
      sequence_number: z.number().int(),
    })
    .nullable(),
  unread_count: z.number().int(),
  read_up_to: z.number().int(),
  updated_at: z.string(),
});

const Status = z.enum(['sent', 'delivered', 'read']);

export const MessageStatusBody = z.object({
  message_id: z.string(),
  conversation_id: z.string(),
  sequence_number: z.number().int(),
  sender_id: z.string(),
  status: Status,
  recipient_count: z.number().int(),
  delivered_count: z.number().int(),
  read_count: z.number().int(),
  recipients: z.array(
    z.object({ user_id: z.string(), status: Status, delivered_at: z.string().nullable(), read_at: z.string().nullable() }),
  ),
});
