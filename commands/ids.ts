import { createHash, randomUUID } from 'node:crypto';

/** Stream id of a conversation: one stream per conversation, in the `conversation` category. */
export const conversationStreamId = (conversationId: string) => `conversation-${conversationId}`;

const DIRECT_NAMESPACE = 'chat:direct-conversation:v1';

/**
 * The id of the direct conversation between two users, the same whoever opens it: a name-based
 * UUID (SHA-1, RFC 9562 version 5 layout) of the sorted pair. Uniqueness per pair then needs no
 * index: opening it twice targets the same stream, and the decider sees it exists.
 */
export function directConversationId(a: string, b: string): string {
  const [x, y] = a < b ? [a, b] : [b, a];
  const bytes = createHash('sha1').update(`${DIRECT_NAMESPACE}\n${x}\n${y}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const newId = (): string => randomUUID();
