import { z } from 'zod';
import { ContentType, Id, type ConversationEvent } from '../../domain/conversation/events.js';
import { MAX_GROUP_NAME_CHARS, MAX_STORED_FILE_NAME_CHARS } from '../../domain/fields.js';

/**
 * One push job: "this message reached this user while they had no live connection". Jobs go
 * through the push queue (push-queue.ts) as UTF-8 JSON, validated when consumed.
 */
export const PREVIEW_MAX_CHARS = 100;

export const PushJob = z.object({
  /** `<event_id>:<user_id>`: the queue's dedupe key. */
  job_id: z.string().min(1).max(200),
  user_id: Id,
  conversation_id: Id,
  conversation_kind: z.enum(['direct', 'group']),
  conversation_name: z.string().max(MAX_GROUP_NAME_CHARS).nullable(),
  message_id: Id,
  /** The message's version in its conversation. */
  sequence_number: z.number().int().positive(),
  sender_id: Id,
  content_type: ContentType,
  /** Text messages: the start of the text (at most PREVIEW_MAX_CHARS + 1 characters, whitespace collapsed). */
  text: z.string().max(PREVIEW_MAX_CHARS + 1),
  file_name: z.string().max(MAX_STORED_FILE_NAME_CHARS).nullable(),
  sent_at: z.string(),
});
export type PushJob = z.infer<typeof PushJob>;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export const encodeJob = (job: PushJob): Uint8Array => encoder.encode(JSON.stringify(job));

export function decodeJob(payload: Uint8Array): { ok: true; job: PushJob } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(payload));
  } catch (error) {
    return { ok: false, reason: `not UTF-8 JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = PushJob.safeParse(json);
  return parsed.success ? { ok: true, job: parsed.data } : { ok: false, reason: z.prettifyError(parsed.error) };
}

/** Whitespace collapsed, cut to PREVIEW_MAX_CHARS characters (code points) with an ellipsis. */
export function textPreview(content: string): string {
  const flat = content.replace(/\s+/gu, ' ').trim();
  const chars = [...flat];
  return chars.length <= PREVIEW_MAX_CHARS ? flat : `${chars.slice(0, PREVIEW_MAX_CHARS - 1).join('').trimEnd()}…`;
}

/** The job telling `userId` about a message: what its notification shows (notification.ts). */
export function pushJobFor(input: {
  eventId: string;
  userId: string;
  conversation: { id: string; kind: 'direct' | 'group'; name: string | null };
  sequenceNumber: number;
  message: Extract<ConversationEvent, { type: 'MessageSent' }>['data'];
}): PushJob {
  const m = input.message;
  return {
    job_id: `${input.eventId}:${input.userId}`,
    user_id: input.userId,
    conversation_id: input.conversation.id,
    conversation_kind: input.conversation.kind,
    conversation_name: input.conversation.name,
    message_id: m.message_id,
    sequence_number: input.sequenceNumber,
    sender_id: m.sender_id,
    content_type: m.content_type,
    text: m.content_type === 'text' ? textPreview(m.content) : '',
    file_name: m.media?.file_name ?? null,
    sent_at: m.created_at,
  };
}
