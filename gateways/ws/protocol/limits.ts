/**
 * The numbers of the protocol (PROTOCOL.md). Shared by the gateway and the client SDK, so this
 * module imports nothing but the domain's field limits (pure, no Node.js module).
 */
import { MAX_CLIENT_MESSAGE_ID_CHARS, MAX_ID_CHARS, MAX_VERSION } from '../../../domain/fields.js';

/** The protocol version this code speaks (Hello.protocol_version, Welcome.protocol_version). */
export const PROTOCOL_VERSION = 1;
/** The oldest protocol version a server built from this code still accepts. */
export const MIN_PROTOCOL_VERSION = 1;

/** The largest ClientFrame a server accepts, in bytes; larger ones are refused undecoded. */
export const MAX_FRAME_BYTES = 128 * 1024;
/** SendMessage.content: at most this many bytes of UTF-8. */
export const MAX_CONTENT_BYTES = 64 * 1024;
/** Conversation ids, device ids, media ids: 1..64 characters (the domain's Id). */
export const MAX_ID_LENGTH = MAX_ID_CHARS;
/** SendMessage.client_message_id: 1..128 characters (the domain's and the REST API's limit). */
export const MAX_CLIENT_MESSAGE_ID_LENGTH = MAX_CLIENT_MESSAGE_ID_CHARS;
/** Versions and cursors: at most 2^31-1 (the store keeps versions as 32-bit integers). */
export { MAX_VERSION };
/** Hello.token: a JWT is far shorter; anything longer is refused before verification. */
export const MAX_TOKEN_LENGTH = 8 * 1024;
/** Cursors in one Hello or Sync; a client that knows more conversations sends further Syncs. */
export const MAX_CURSORS = 2000;

/**
 * Request frames per connection: a token bucket of RATE_BURST frames refilled at RATE_PER_S.
 * A frame over the limit is not handled: it gets Error RATE_LIMITED with retry_after_ms. A client
 * that goes on sending RATE_FLOOD_FRAMES frames over the limit without pausing is closed (4006).
 * Far above what a person or a well-behaved bot sends; Ping is counted like any frame.
 */
export const RATE_PER_S = 200;
export const RATE_BURST = 400;
export const RATE_FLOOD_FRAMES = 1_000;

/** The first frame must be a Hello within this long after the upgrade. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Clients send Ping this often (Welcome.heartbeat_interval_ms). */
export const HEARTBEAT_INTERVAL_MS = 30_000;
/** The server closes a connection (4001) that sent no frame for two heartbeat intervals. */
export const HEARTBEAT_TIMEOUT_MS = 2 * HEARTBEAT_INTERVAL_MS;
/** A user with no sign of life from any connection for this long is offline. */
export const PRESENCE_TIMEOUT_MS = 120_000;
/** At most one accepted typing signal per user and conversation per this long. */
export const TYPING_THROTTLE_MS = 1_000;
/** A typing state lapses this long after the last accepted signal. */
export const TYPING_TTL_MS = 3_000;

/**
 * Version negotiation: the client announces the newest version it speaks; the server answers with
 * the version it will speak (the newest both know), or null when it cannot serve the client
 * (answer Error unsupported_version and close with 4102).
 */
export function negotiateProtocolVersion(clientVersion: number): number | null {
  if (!Number.isSafeInteger(clientVersion) || clientVersion < MIN_PROTOCOL_VERSION) return null;
  return Math.min(clientVersion, PROTOCOL_VERSION);
}
