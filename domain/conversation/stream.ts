/**
 * Every conversation is one stream of the event store, named `conversation-<conversation_id>`:
 * the one place that knows the name (commands, projections, the delivery path and the protocol
 * all derive it from here).
 */
export const CONVERSATION_STREAM_PREFIX = 'conversation-';

/** The stream of conversation `conversationId`. */
export const conversationStreamId = (conversationId: string): string => `${CONVERSATION_STREAM_PREFIX}${conversationId}`;

/** The conversation id of a conversation stream, or null for a stream of another kind. */
export function conversationIdOf(streamId: string): string | null {
  return streamId.startsWith(CONVERSATION_STREAM_PREFIX) ? streamId.slice(CONVERSATION_STREAM_PREFIX.length) : null;
}
