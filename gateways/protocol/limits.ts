/**
 * The numbers of the protocol (PROTOCOL.md). Shared by the gateway and the client SDK, so this
 * module imports nothing but the domain's field limits (pure, no Node.js module).
 */
import { MAX_CLIENT_MESSAGE_ID_CHARS, MAX_ID_CHARS, MAX_VERSION } from '../../domain/fields.js';

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
 * whose refused frames reach RATE_FLOOD_FRAMES within RATE_FLOOD_WINDOW_MS is closed (4006),
 * whether or not frames in between were admitted (a steady flood over the limit is a flood).
 * Far above what a person or a well-behaved bot sends; Ping is counted like any frame.
 */
export const RATE_PER_S = 200;
export const RATE_BURST = 400;
export const RATE_FLOOD_FRAMES = 1_000;
export const RATE_FLOOD_WINDOW_MS = 60_000;

/**
 * Sync cursors (Hello's and Sync's) per user and gateway node: a bucket of SYNC_CURSOR_BURST
 * refilled at SYNC_CURSORS_PER_S. A frame is taken while the bucket is not empty and charged its
 * cursors, possibly into debt (so a full frame of MAX_CURSORS is always taken eventually); while
 * the bucket is empty a Sync gets Error RATE_LIMITED with retry_after_ms, and a Hello's cursors
 * are deferred (Error RATE_LIMITED, request_id 0, reason `sync_deferred`): the client sends them
 * in a Sync after retry_after_ms. A replay that reads more than SYNC_EVENTS_PER_CURSOR events of
 * its conversation is charged one more cursor per that many.
 */
export const SYNC_CURSORS_PER_S = 200;
export const SYNC_CURSOR_BURST = 5 * SYNC_CURSORS_PER_S;
export const SYNC_EVENTS_PER_CURSOR = 1_000;
/** Cursors one connection may have waiting for their replay; a Sync past it gets RATE_LIMITED (reason `sync_backlog`). */
export const MAX_QUEUED_SYNC_CURSORS = 2 * MAX_CURSORS;

/**
 * Connections per gateway node (server defaults; WS_MAX_CONNECTIONS_PER_USER, ..._PER_ADDRESS,
 * WS_MAX_UNAUTHENTICATED_PER_ADDRESS): one user's, one client address's, and one address's that
 * have not completed their handshake. A connection over a cap is closed with Goodbye
 * TOO_MANY_CONNECTIONS (4007) and reconnect_after_ms.
 */
export const MAX_CONNECTIONS_PER_USER = 16;
export const MAX_CONNECTIONS_PER_ADDRESS = 256;
export const MAX_UNAUTHENTICATED_PER_ADDRESS = 32;
/** Goodbye 4007's reconnect_after_ms: for a handshake slot (they free within a round trip) and for the other caps. */
export const RECONNECT_AFTER_HANDSHAKE_CAP_MS = 1_000;
export const RECONNECT_AFTER_CONNECTION_CAP_MS = 10_000;

/**
 * Handshakes (accepted Hellos) per user and gateway node, per minute (server default;
 * WS_HELLOS_PER_MINUTE, 0 = no limit), in bursts of as many. Each Welcome costs the node a contacts
 * query and a presence snapshot, so a client in a reconnect loop would have the database repeat
 * them without end; past the budget a Hello gets Goodbye TOO_MANY_CONNECTIONS (4007, reason
 * `too_many_handshakes`) with reconnect_after_ms = when the next one is allowed.
 */
export const HELLOS_PER_MINUTE = 30;

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
