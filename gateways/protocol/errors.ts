import { DomainError, type ErrorKind } from '../../domain/errors.js';
import type { ServerFrame } from './frames.js';
import { ErrorCode } from './gen/chat/v1/common_pb.js';

/**
 * The WebSocket protocol's one error catalogue (PROTOCOL.md, "Errors" and "Close codes").
 *
 * Every error leaves as an Error frame {code, message, retryable, field?, reason} with the
 * request_id of the frame that caused it; errors marked with a close code are followed by a
 * Goodbye and the close of the connection with that code. Domain errors map by kind (their own
 * stable code travels as `reason`, as in the REST API); the protocol adds its own errors.
 */

/**
 * WebSocket close codes. 4000..4099: the client should reconnect (with back-off, then sync from
 * its cursors). 4100..4199: terminal, the client must not reconnect until something changes (a
 * new token, a newer client). Codes below 4000 are the WebSocket standard's.
 */
export const CloseCode = Object.freeze({
  /** Standard: the client closed, or the server closed after a Goodbye the client asked for. */
  NORMAL: 1000,
  /** Standard: a peer went away (server restart without a Goodbye, page navigation). */
  GOING_AWAY: 1001,
  /** Standard: a message beyond the transport's hard limit (a client bug: check MAX_FRAME_BYTES). */
  MESSAGE_TOO_BIG: 1009,

  /** The server node is shutting down or draining: reconnect (another node will take over). */
  SHUTDOWN: 4000,
  /** No frame from the client for two heartbeat intervals. */
  HEARTBEAT_TIMEOUT: 4001,
  /** A server-side failure broke the connection. */
  INTERNAL: 4002,
  /** The client did not read its frames fast enough; the server dropped it to protect others. */
  SLOW_CONSUMER: 4003,
  /** The token expired during the session: get a fresh one, then reconnect. */
  TOKEN_EXPIRED: 4004,
  /** No Hello within 10 s of the upgrade. */
  HANDSHAKE_TIMEOUT: 4005,
  /** Too many frames for too long: reconnect after a back-off. */
  RATE_LIMITED: 4006,
  /**
   * Refused at the door: the user, or the client's address, has as many connections on this node
   * as it may (or as many still in their handshake): reconnect after Goodbye.reconnect_after_ms.
   */
  TOO_MANY_CONNECTIONS: 4007,

  /** The token was rejected (invalid, expired at Hello, or revoked): log in again first. */
  UNAUTHENTICATED: 4100,
  /** The client broke the protocol (undecodable frame, a frame before Hello). */
  PROTOCOL_ERROR: 4101,
  /** The server speaks no protocol version the client accepts: upgrade the client. */
  UNSUPPORTED_VERSION: 4102,
  /** The account may no longer connect (disabled or deleted). */
  FORBIDDEN: 4103,
} as const);
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export const RECONNECT_CLOSE_CODES = Object.freeze({ min: 4000, max: 4099 });
export const TERMINAL_CLOSE_CODES = Object.freeze({ min: 4100, max: 4199 });

/**
 * What a client does after a close with `code`: `normal` (it closed on purpose: nothing),
 * `reconnect` (back off and reconnect), `terminal` (stop and surface the reason). Unknown codes
 * (network drops arrive as 1006) mean reconnect, except the terminal range and 1009.
 */
export function closeCodeKind(code: number): 'normal' | 'reconnect' | 'terminal' {
  if (code === CloseCode.NORMAL) return 'normal';
  if (code >= TERMINAL_CLOSE_CODES.min && code <= TERMINAL_CLOSE_CODES.max) return 'terminal';
  if (code === CloseCode.MESSAGE_TOO_BIG) return 'terminal';
  return 'reconnect';
}

/** Errors the WebSocket protocol raises itself, apart from the domain's kinds. */
export type ProtocolErrorName =
  | 'malformed_frame'
  | 'unknown_frame'
  | 'frame_too_large'
  | 'not_authenticated'
  | 'unsupported_version'
  | 'rate_limited'
  | 'internal';

export type ErrorName = ProtocolErrorName | ErrorKind;

export type ErrorSpec = Readonly<{
  code: ErrorCode;
  /** The same request may succeed later. */
  retryable: boolean;
  /** The connection is closed with this code after the Error frame (null: it stays open). */
  close: CloseCode | null;
}>;

export const ERRORS: Readonly<Record<ErrorName, ErrorSpec>> = Object.freeze({
  malformed_frame: { code: ErrorCode.MALFORMED_FRAME, retryable: false, close: CloseCode.PROTOCOL_ERROR },
  unknown_frame: { code: ErrorCode.UNKNOWN_FRAME, retryable: false, close: null },
  frame_too_large: { code: ErrorCode.FRAME_TOO_LARGE, retryable: false, close: null },
  not_authenticated: { code: ErrorCode.NOT_AUTHENTICATED, retryable: false, close: CloseCode.PROTOCOL_ERROR },
  unsupported_version: { code: ErrorCode.UNSUPPORTED_VERSION, retryable: false, close: CloseCode.UNSUPPORTED_VERSION },
  rate_limited: { code: ErrorCode.RATE_LIMITED, retryable: true, close: null },
  internal: { code: ErrorCode.INTERNAL, retryable: true, close: null },

  validation: { code: ErrorCode.VALIDATION, retryable: false, close: null },
  unauthenticated: { code: ErrorCode.UNAUTHENTICATED, retryable: false, close: CloseCode.UNAUTHENTICATED },
  forbidden: { code: ErrorCode.FORBIDDEN, retryable: false, close: null },
  not_found: { code: ErrorCode.NOT_FOUND, retryable: false, close: null },
  conflict: { code: ErrorCode.CONFLICT, retryable: false, close: null },
  illegal_state: { code: ErrorCode.ILLEGAL_STATE, retryable: false, close: null },
});

const NAME_BY_CODE: ReadonlyMap<ErrorCode, ErrorName> = new Map(
  (Object.entries(ERRORS) as [ErrorName, ErrorSpec][]).map(([name, spec]) => [spec.code, name]),
);

/** The catalogue name of a wire ErrorCode (for the SDK); undefined for codes this build does not know. */
export function errorNameOf(code: ErrorCode | number): ErrorName | undefined {
  return NAME_BY_CODE.get(code);
}

export type ErrorFrameOptions = {
  /** The offending field, e.g. "send_message.content". */
  field?: string;
  /** A finer stable reason (a domain error code); defaults to the error's name. */
  reason?: string;
  retryAfterMs?: number;
};

/** An Error frame replying to `requestId` (0 when the request id is unknown). */
export function errorFrame(requestId: number, name: ErrorName, message: string, options: ErrorFrameOptions = {}): ServerFrame {
  const spec = ERRORS[name];
  return {
    requestId,
    body: {
      case: 'error',
      value: {
        code: spec.code,
        message,
        retryable: spec.retryable,
        ...(options.field === undefined ? {} : { field: options.field }),
        reason: options.reason ?? name,
        retryAfterMs: options.retryAfterMs ?? 0,
      },
    },
  };
}

/** A Goodbye frame, sent right before closing with the same code. */
export function goodbyeFrame(closeCode: CloseCode, reason: string, reconnectAfterMs = 0): ServerFrame {
  return { requestId: 0, body: { case: 'goodbye', value: { closeCode, reason, reconnectAfterMs } } };
}

export type MappedError = { frame: ServerFrame; close: CloseCode | null; /** a bug or an outage: log it */ internal: boolean };

/**
 * Maps anything thrown while serving a request to its Error frame and whether to close. Domain
 * errors keep their message and stable code; anything else is `internal` with a generic message
 * (the details belong in the server log, not on the wire).
 */
export function mapError(requestId: number, error: unknown): MappedError {
  if (error instanceof DomainError) {
    const field = typeof error.details?.field === 'string' ? error.details.field : undefined;
    const frame = errorFrame(requestId, error.kind, error.message, { reason: error.code, ...(field === undefined ? {} : { field }) });
    return { frame, close: ERRORS[error.kind].close, internal: false };
  }
  return { frame: errorFrame(requestId, 'internal', 'internal server error'), close: null, internal: true };
}

/** Error.reason of a request refused because a dependency (database, Redis, object store) cannot be reached. */
export const DEPENDENCY_UNAVAILABLE = 'dependency_unavailable';
/** Error.retry_after_ms of such a refusal. */
export const UNAVAILABLE_RETRY_AFTER_MS = 1_000;

/**
 * The Error for a request refused because `dependency` cannot be reached right now: INTERNAL,
 * retryable, reason `dependency_unavailable`, with a retry hint. An outage, not a bug: the gateway
 * does not log it per request (the dependency's health logs the outage once).
 */
export function unavailableError(requestId: number, dependency: string): MappedError {
  const frame = errorFrame(requestId, 'internal', `${dependency} is unavailable; retry shortly`, { reason: DEPENDENCY_UNAVAILABLE, retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS });
  return { frame, close: null, internal: false };
}
