/**
 * The binary WebSocket protocol (PROTOCOL.md): frame types, codec, event mapping, error
 * catalogue and limits. Shared by the gateway and the client SDK; it imports no Node.js module,
 * so it bundles for browsers. Import from here, not from the files behind it.
 */
export type {
  ClientBody,
  ClientFrame,
  ClientFrameCase,
  ClientRequest,
  EventFrame,
  EventPayload,
  ServerBody,
  ServerFrame,
  ServerFrameCase,
  ServerMessage,
} from './frames.js';
export {
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  encodeServerFrame,
  fieldPath,
  peekRequestId,
  validateClientFrame,
  type DecodeError,
  type DecodeErrorCode,
  type DecodeResult,
} from './codec.js';
export {
  CONVERSATION_STREAM_PREFIX,
  EventFrameError,
  eventFrame,
  fromEventFrame,
  parsedEventFrame,
  toEventFrame,
  type FromEventFrameResult,
  type ReceivedEvent,
  type StoredEventLike,
  type ToEventFrameOptions,
} from './event-frames.js';
export {
  CloseCode,
  DEPENDENCY_UNAVAILABLE,
  ERRORS,
  RECONNECT_CLOSE_CODES,
  TERMINAL_CLOSE_CODES,
  closeCodeKind,
  errorFrame,
  errorNameOf,
  goodbyeFrame,
  mapError,
  unavailableError,
  UNAVAILABLE_RETRY_AFTER_MS,
  type ErrorFrameOptions,
  type ErrorName,
  type ErrorSpec,
  type MappedError,
  type ProtocolErrorName,
} from './errors.js';
export {
  contentTypeFromProto,
  contentTypeToProto,
  conversationKindFromProto,
  conversationKindToProto,
  fromPresenceEvent,
  isoToMs,
  msToIso,
  presenceFrame,
  presenceStatusFromProto,
  presenceStatusToProto,
  syncRequiredFrame,
  typingFrame,
  type PresenceStatusName,
  type SyncRequiredReason,
} from './mapping.js';
export * from './limits.js';
export { ContentType, ErrorCode, PresenceStatus } from './gen/chat/v1/common_pb.js';
export { ConversationKind } from './gen/chat/v1/events_pb.js';
export type { Plain } from './plain.js';
