import { ConversationEvent, type ConversationEventType } from './events.js';

/**
 * Event schema versions and upcasting (EVENTS.md, "Versioning").
 *
 * Stored events are never rewritten. Each event carries the schema version of its `data` in its
 * metadata (`metadata.schema`, an integer); an event without it is version 1, which is the shape
 * of every event written before versions were recorded, so every event already stored stays valid.
 * When events are read for folding, projecting or replaying, `parseConversationEvent` brings the
 * data up to the current version one step at a time (v -> v+1 -> ... -> current), then validates
 * it with the event's zod schema. Writers always write the current version; a version above the
 * current one (written by newer software) is refused, never guessed at.
 */

/** The metadata field that holds an event's schema version. */
export const SCHEMA_VERSION_KEY = 'schema';

/** The version every event type is written at today. */
export const CURRENT_SCHEMA_VERSIONS: Readonly<Record<ConversationEventType, number>> = Object.freeze({
  ConversationCreated: 1,
  MembersAdded: 1,
  MemberRemoved: 1,
  MessageSent: 1,
  ReactionAdded: 1,
  ReactionRemoved: 1,
  Delivered: 1,
  Read: 1,
});

/** Turns the data of one schema version into the next one. Pure; must not mutate its input. */
export type Upcaster = (data: Record<string, unknown>) => Record<string, unknown>;

/**
 * The upcaster chain: UPCASTERS[type][v] turns version v into v + 1. Every version from the
 * oldest one ever written up to current - 1 needs a step.
 */
export const UPCASTERS: Readonly<Partial<Record<ConversationEventType, Readonly<Record<number, Upcaster>>>>> = Object.freeze({
  MessageSent: {
    // v0, the text-only prototype, had neither attachments nor client message ids.
    0: (data) => ({ ...data, content_type: data.content_type ?? 'text', media: data.media ?? null, client_message_id: data.client_message_id ?? null }),
  },
});

/** An event whose schema version cannot be brought to the current one. */
export class EventSchemaError extends Error {
  override readonly name = 'EventSchemaError';
  constructor(
    readonly eventType: string,
    readonly schemaVersion: unknown,
    message: string,
  ) {
    super(message);
  }
}

export type RawEvent = { type: string; data: unknown; metadata?: Record<string, unknown> | null };

const isKnownType = (type: string): type is ConversationEventType => Object.hasOwn(CURRENT_SCHEMA_VERSIONS, type);

/** The schema version recorded in an event's metadata (1 when absent). */
export function schemaVersionOf(event: RawEvent): number {
  const raw = event.metadata?.[SCHEMA_VERSION_KEY];
  if (raw === undefined || raw === null) return 1;
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) {
    throw new EventSchemaError(event.type, raw, `${event.type}: metadata.${SCHEMA_VERSION_KEY} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/**
 * Brings an event's data to the current schema version of its type, without validating it.
 * Unknown event types are returned as they are (the caller's parse rejects them).
 */
export function upcast(event: RawEvent): { type: string; data: unknown } {
  if (!isKnownType(event.type)) return { type: event.type, data: event.data };
  const current = CURRENT_SCHEMA_VERSIONS[event.type];
  let version = schemaVersionOf(event);
  if (version > current) {
    throw new EventSchemaError(event.type, version, `${event.type}: schema version ${version} is newer than this software knows (${current}); upgrade before reading it`);
  }
  if (version === current) return { type: event.type, data: event.data };
  if (typeof event.data !== 'object' || event.data === null || Array.isArray(event.data)) {
    throw new EventSchemaError(event.type, version, `${event.type}: data of schema version ${version} is not an object`);
  }
  let data = event.data as Record<string, unknown>;
  const steps = UPCASTERS[event.type] ?? {};
  while (version < current) {
    const step = steps[version];
    if (!step) throw new EventSchemaError(event.type, version, `${event.type}: no upcaster from schema version ${version} to ${version + 1}`);
    data = step(data);
    version++;
  }
  return { type: event.type, data };
}

/** Upcasts and validates a stored event: what every reader that folds or projects events uses. */
export function parseConversationEvent(event: RawEvent): ConversationEvent {
  return ConversationEvent.parse(upcast(event));
}

/** As parseConversationEvent, but reports failure instead of throwing. */
export function safeParseConversationEvent(event: RawEvent): { success: true; data: ConversationEvent } | { success: false; error: Error } {
  try {
    const parsed = ConversationEvent.safeParse(upcast(event));
    return parsed.success ? { success: true, data: parsed.data } : { success: false, error: parsed.error };
  } catch (error) {
    return { success: false, error: error instanceof Error ? error : new Error(String(error)) };
  }
}
