import { z } from 'zod';
import { ConversationEvent, Id } from '../../domain/conversation/events.js';
import { CONVERSATION_STREAM_PREFIX } from '../../domain/conversation/stream.js';
import { safeParseConversationEvent } from '../../domain/conversation/upcast.js';
import type { EventFrame, EventPayload, ServerFrame } from './frames.js';
import { contentTypeFromProto, contentTypeToProto, conversationKindFromProto, conversationKindToProto, isoToMs, msToIso } from './mapping.js';

/**
 * Stored domain events <-> Event frames. The payloads mirror domain/conversation/events.ts field
 * by field: ISO-8601 times travel as Unix ms, null as an absent optional field. A time written by
 * Date#toISOString (as the command side writes them) comes back identical.
 */

/** What the gateway gets from the event store or the bus (StoredEvent has these and more). */
export type StoredEventLike = {
  type: string;
  data: unknown;
  /** Holds the schema version the data was written at (domain/conversation/upcast.ts). */
  metadata?: Record<string, unknown>;
  stream_id: string;
  version: number;
  event_id: string;
  created_at: string;
};

export { CONVERSATION_STREAM_PREFIX };

/** A stored event that cannot become an Event frame: not a conversation stream, or data the domain schema refuses. */
export class EventFrameError extends Error {
  override readonly name = 'EventFrameError';
}

export type ToEventFrameOptions = {
  /**
   * Event.previous_version: the version of the previous event of the conversation that went to
   * every member (the last non-receipt event before this one), the same for every recipient
   * (PROTOCOL.md, "Gap detection"). Default 0, which disables the client's gap check for this
   * event; never pass more than the true value.
   */
  previousVersion?: number;
};

/**
 * Maps a stored conversation event to its Event frame. Throws EventFrameError when the event is
 * not a conversation event the domain schemas accept (a bug or a newer writer: log and skip it).
 * The frame is the same for every recipient: map and encode once per event, send to all.
 */
export function toEventFrame(stored: StoredEventLike, options: ToEventFrameOptions = {}): EventFrame {
  if (!stored.stream_id.startsWith(CONVERSATION_STREAM_PREFIX)) {
    throw new EventFrameError(`event ${stored.event_id}: stream ${stored.stream_id} is not a conversation stream`);
  }
  const parsed = safeParseConversationEvent(stored);
  if (!parsed.success) {
    throw new EventFrameError(`event ${stored.event_id} (${stored.type}) of ${stored.stream_id} does not match the domain schema: ${parsed.error.message}`);
  }
  return parsedEventFrame(stored, parsed.data, options);
}

/**
 * toEventFrame for an event whose data the caller has already parsed (and upcast) from `stored`
 * with the domain schema: parse once (the delivery worker routes the parsed event, then frames it).
 */
export function parsedEventFrame(stored: StoredEventLike, event: ConversationEvent, options: ToEventFrameOptions = {}): EventFrame {
  if (!stored.stream_id.startsWith(CONVERSATION_STREAM_PREFIX)) {
    throw new EventFrameError(`event ${stored.event_id}: stream ${stored.stream_id} is not a conversation stream`);
  }
  return {
    conversationId: stored.stream_id.slice(CONVERSATION_STREAM_PREFIX.length),
    version: stored.version,
    eventId: stored.event_id,
    createdAtMs: isoToMs(stored.created_at),
    previousVersion: options.previousVersion ?? 0,
    payload: payloadOf(event),
  };
}

/** The Event push frame for a recipient. */
export function eventFrame(event: EventFrame): ServerFrame {
  return { requestId: 0, body: { case: 'event', value: event } };
}

function payloadOf(event: ConversationEvent): EventPayload {
  switch (event.type) {
    case 'ConversationCreated': {
      const d = event.data;
      return {
        case: 'conversationCreated',
        value: {
          conversationId: d.conversation_id,
          kind: conversationKindToProto(d.kind),
          createdBy: d.created_by,
          members: d.members,
          ...(d.name === null ? {} : { name: d.name }),
          ...(d.description === null ? {} : { description: d.description }),
          createdAtMs: isoToMs(d.created_at),
        },
      };
    }
    case 'MembersAdded':
      return { case: 'membersAdded', value: { userIds: event.data.user_ids, addedBy: event.data.added_by, addedAtMs: isoToMs(event.data.added_at) } };
    case 'MemberRemoved':
      return {
        case: 'memberRemoved',
        value: { userId: event.data.user_id, removedBy: event.data.removed_by, removedAtMs: isoToMs(event.data.removed_at) },
      };
    case 'MessageSent': {
      const d = event.data;
      const media = d.media;
      return {
        case: 'messageSent',
        value: {
          messageId: d.message_id,
          senderId: d.sender_id,
          content: d.content,
          contentType: contentTypeToProto(d.content_type),
          ...(media === null
            ? {}
            : {
                media: {
                  mediaId: media.media_id,
                  ...(media.mime_type === undefined ? {} : { mimeType: media.mime_type }),
                  ...(media.size_bytes === undefined ? {} : { sizeBytes: media.size_bytes }),
                  ...(media.file_name === undefined ? {} : { fileName: media.file_name }),
                },
              }),
          ...(d.client_message_id === null ? {} : { clientMessageId: d.client_message_id }),
          createdAtMs: isoToMs(d.created_at),
        },
      };
    }
    case 'ReactionAdded':
    case 'ReactionRemoved': {
      const d = event.data;
      const value = { messageId: d.message_id, messageVersion: d.message_version, userId: d.user_id, emoji: d.emoji, atMs: isoToMs(d.at) };
      return event.type === 'ReactionAdded' ? { case: 'reactionAdded', value } : { case: 'reactionRemoved', value };
    }
    case 'Delivered':
    case 'Read': {
      const d = event.data;
      const value = { userId: d.user_id, deviceId: d.device_id, upToVersion: d.up_to_version, atMs: isoToMs(d.at) };
      return event.type === 'Delivered' ? { case: 'delivered', value } : { case: 'read', value };
    }
    default: {
      const never: never = event;
      throw new EventFrameError(`no Event payload for ${JSON.stringify(never)}`);
    }
  }
}

/** An event as the SDK hands it to the application: the domain event plus where it sits. */
export type ReceivedEvent = ConversationEvent & {
  conversation_id: string;
  version: number;
  previous_version: number;
  event_id: string;
  created_at: string;
};

export type FromEventFrameResult =
  | { ok: true; event: ReceivedEvent }
  /** `unknown_event`: a payload this build does not know (a newer server); its version still counts as seen. */
  | { ok: false; error: { code: 'unknown_event' | 'invalid_event'; message: string } };

const Envelope = z.object({
  conversationId: Id,
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  eventId: Id,
  previousVersion: z.number().int().min(0),
});

/** Maps an Event frame back to the domain event, validated by the domain's zod schemas. Never throws. */
export function fromEventFrame(frame: EventFrame): FromEventFrameResult {
  try {
    const envelope = Envelope.safeParse(frame);
    if (!envelope.success) {
      const issue = envelope.error.issues[0];
      return invalid(`event.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    if (frame.previousVersion >= frame.version) return invalid(`previous_version ${frame.previousVersion} is not below version ${frame.version}`);
    const createdAt = msToIso(frame.createdAtMs);
    if (createdAt === undefined) return invalid(`created_at_ms ${frame.createdAtMs} is not a time`);
    if (frame.payload.case === undefined) return { ok: false, error: { code: 'unknown_event', message: `event ${frame.eventId}: unknown payload` } };
    const parsed = ConversationEvent.safeParse(domainEventOf(frame.payload));
    if (!parsed.success) return invalid(`event ${frame.eventId}: ${parsed.error.message}`);
    return {
      ok: true,
      event: {
        ...parsed.data,
        conversation_id: frame.conversationId,
        version: frame.version,
        previous_version: frame.previousVersion,
        event_id: frame.eventId,
        created_at: createdAt,
      },
    };
  } catch (error) {
    // Unmappable values, and anything unforeseen: the promise is "never throws".
    return invalid(error instanceof Error ? error.message : String(error));
  }
}

const invalid = (message: string): FromEventFrameResult => ({ ok: false, error: { code: 'invalid_event', message } });

/** Thrown inside the mapping for a value that has no domain equivalent; caught by fromEventFrame. */
class Unmappable extends Error {}

function iso(ms: number, field: string): string {
  const text = msToIso(ms);
  if (text === undefined) throw new Unmappable(`${field}: ${ms} is not a time`);
  return text;
}

/** The domain event of a payload, before the domain schema checks it. */
function domainEventOf(payload: EventPayload): { type: ConversationEvent['type']; data: Record<string, unknown> } {
  switch (payload.case) {
    case 'conversationCreated': {
      const v = payload.value;
      const kind = conversationKindFromProto(v.kind);
      if (kind === undefined) throw new Unmappable(`conversation_created.kind: unknown value ${v.kind}`);
      return {
        type: 'ConversationCreated',
        data: {
          conversation_id: v.conversationId,
          kind,
          created_by: v.createdBy,
          members: v.members,
          name: v.name ?? null,
          description: v.description ?? null,
          created_at: iso(v.createdAtMs, 'conversation_created.created_at_ms'),
        },
      };
    }
    case 'membersAdded': {
      const v = payload.value;
      return { type: 'MembersAdded', data: { user_ids: v.userIds, added_by: v.addedBy, added_at: iso(v.addedAtMs, 'members_added.added_at_ms') } };
    }
    case 'memberRemoved': {
      const v = payload.value;
      return {
        type: 'MemberRemoved',
        data: { user_id: v.userId, removed_by: v.removedBy, removed_at: iso(v.removedAtMs, 'member_removed.removed_at_ms') },
      };
    }
    case 'messageSent': {
      const v = payload.value;
      const contentType = contentTypeFromProto(v.contentType);
      if (contentType === undefined) throw new Unmappable(`message_sent.content_type: unknown value ${v.contentType}`);
      const m = v.media;
      const media =
        m === undefined
          ? null
          : {
              media_id: m.mediaId,
              ...(m.mimeType === undefined ? {} : { mime_type: m.mimeType }),
              ...(m.sizeBytes === undefined ? {} : { size_bytes: m.sizeBytes }),
              ...(m.fileName === undefined ? {} : { file_name: m.fileName }),
            };
      return {
        type: 'MessageSent',
        data: {
          message_id: v.messageId,
          sender_id: v.senderId,
          content: v.content,
          content_type: contentType,
          media,
          client_message_id: v.clientMessageId ?? null,
          created_at: iso(v.createdAtMs, 'message_sent.created_at_ms'),
        },
      };
    }
    case 'reactionAdded':
    case 'reactionRemoved': {
      const v = payload.value;
      const data = { message_id: v.messageId, message_version: v.messageVersion, user_id: v.userId, emoji: v.emoji, at: iso(v.atMs, `${payload.case}.at_ms`) };
      return { type: payload.case === 'reactionAdded' ? 'ReactionAdded' : 'ReactionRemoved', data };
    }
    case 'delivered':
    case 'read': {
      const v = payload.value;
      const data = { user_id: v.userId, device_id: v.deviceId, up_to_version: v.upToVersion, at: iso(v.atMs, `${payload.case}.at_ms`) };
      return { type: payload.case === 'delivered' ? 'Delivered' : 'Read', data };
    }
    default: {
      const never: never = payload;
      throw new Unmappable(`unknown payload ${JSON.stringify(never)}`);
    }
  }
}
