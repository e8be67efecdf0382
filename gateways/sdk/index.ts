/**
 * The chat client SDK (browsers and Node.js): `createChatClient`. See client.ts and PROTOCOL.md.
 */
export {
  ChatConnectionError,
  ChatRequestError,
  createChatClient,
  type ChatClient,
  type ChatClientEvents,
  type ChatClientOptions,
  type ChatClientState,
  type ChatClientStats,
  type Credentials,
  type SendOptions,
  type SendResult,
  type WebSocketConstructor,
  type WebSocketLike,
  type Welcome,
} from './client.js';
export { memoryCursorStore, type CursorStore } from './cursor-store.js';
export { expiryOf, type SessionTokens } from './credentials.js';
export { ChatHttpError, type FetchLike } from './rest.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { ConversationCursors, type EventDecision } from './ordering.js';
export type { ReceivedEvent, PresenceStatusName } from '../protocol/index.js';
