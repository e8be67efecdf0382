import type { ConversationEvent } from '../../domain/conversation/events.js';
import { CONVERSATION_STREAM_PREFIX } from '../../domain/conversation/stream.js';
import { parseConversationEvent } from '../../domain/conversation/upcast.js';
import type { StoredEvent } from '../../domain/ports/event-store.js';

/**
 * A stored event as the server's projections receive it: its stored form, and for an event of a
 * conversation stream its data parsed and upcast (null for a stream of another kind: projections
 * skip it, and the batch's positions stay whole).
 */
export type ProjectedEvent = { readonly stored: StoredEvent; readonly event: ConversationEvent | null };

/**
 * The server's projector decode: every event of a batch, a conversation event parsed and upcast
 * once (domain/conversation/upcast.ts) for every projection.
 * Throws on an event the domain schema refuses: the batch is retried, and the projections wait for
 * a fix rather than skip what they cannot read.
 */
export function conversationEvents(events: readonly StoredEvent[]): ProjectedEvent[] {
  return events.map((stored) => ({ stored, event: stored.stream_id.startsWith(CONVERSATION_STREAM_PREFIX) ? parseConversationEvent(stored) : null }));
}
