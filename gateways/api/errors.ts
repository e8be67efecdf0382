import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { DomainError, type ErrorKind } from '../../domain/errors.js';
import { DependencyUnavailableError } from '../../domain/ports/health.js';

/**
 * The REST API's one error catalogue. Every error leaves as
 *   {"error": {"code": "<stable code>", "message": "<human text, naming the field when there is one>"}}
 * with the status listed here. Domain errors map by kind, or by code where the catalogue lists it
 * with a status of its own; the HTTP layer adds its own codes.
 */

export const STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = Object.freeze({
  validation: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  // A request that is well-formed but impossible in the conversation's current state (adding
  // members to a direct conversation): a conflict with that state.
  illegal_state: 409,
});

/** Codes the HTTP layer itself raises, with their status. */
export const HTTP_ERRORS = Object.freeze({
  validation_error: 400,
  invalid_json: 400,
  media_not_supported: 400,
  invalid_cursor: 400,
  bad_request: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  // accounts and sessions
  invalid_refresh_token: 401,
  wrong_password: 403,
  account_disabled: 403,
  login_throttled: 429,
  not_message_sender: 403,
  message_not_found: 404,
  route_not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  // a dependency (database, Redis, object store) cannot be reached: retry after Retry-After
  service_unavailable: 503,
  // push devices
  device_not_found: 404,
  device_token_taken: 409,
  // media: announcing, attaching, downloading, and the local store's signed URLs
  media_type_not_allowed: 400,
  media_too_large: 413,
  media_required: 400,
  unexpected_media: 400,
  media_kind_mismatch: 400,
  media_not_found: 404,
  media_not_yours: 403,
  media_wrong_conversation: 409,
  media_not_uploaded: 409,
  media_mismatch: 409,
  signature_invalid: 403,
  url_expired: 403,
  length_required: 411,
  upload_size_mismatch: 400,
} as const);

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly statusCode: number;
  constructor(
    readonly code: HttpErrorCode,
    message: string,
    /** Sent as `Retry-After` (whole seconds, at least 1). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.statusCode = HTTP_ERRORS[code];
  }
}

export type ErrorBody = { error: { code: string; message: string } };

export type MappedError = {
  status: number;
  body: ErrorBody;
  /** 500: log it, it is a bug (an outage is logged once, by the dependency's health) */
  internal: boolean;
  /** Seconds for a Retry-After header (503). */
  retryAfterSeconds?: number;
};

/** What a client is told to wait before it retries a request refused while a dependency is down. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 1;

const body = (code: string, message: string): ErrorBody => ({ error: { code, message } });

/** Maps anything thrown while serving a request to its status and body. */
export function mapError(error: unknown, limits: { bodyLimit: number }): MappedError {
  if (error instanceof HttpError) {
    const mapped: MappedError = { status: error.statusCode, body: body(error.code, error.message), internal: false };
    if (error.retryAfterSeconds !== undefined) mapped.retryAfterSeconds = Math.max(1, Math.ceil(error.retryAfterSeconds));
    return mapped;
  }
  if (error instanceof DomainError) {
    // By kind, unless the catalogue gives the code a status of its own (media_too_large: 413).
    const status = (HTTP_ERRORS as Readonly<Record<string, number>>)[error.code] ?? STATUS_BY_KIND[error.kind];
    return { status, body: body(error.code, error.message), internal: false };
  }
  if (error instanceof DependencyUnavailableError) {
    return {
      status: 503,
      body: body('service_unavailable', `${error.dependency} is unavailable; retry in ${UNAVAILABLE_RETRY_AFTER_SECONDS} s`),
      internal: false,
      retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
    };
  }
  if (isFastifyError(error)) {
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return clientError(413, 'payload_too_large', `request body exceeds the limit of ${limits.bodyLimit} bytes`);
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return clientError(400, 'invalid_json', 'body: not valid JSON');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return clientError(400, 'validation_error', 'body: Required (Content-Type is application/json but the body is empty)');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return clientError(415, 'unsupported_media_type', 'Content-Type: send application/json');
      // Raised by the router before any route runs (Fastify's frameworkErrors, app.ts).
      case 'FST_ERR_BAD_URL':
        return clientError(400, 'bad_request', 'path: not a valid URL (malformed percent-encoding, or not UTF-8 once decoded)');
      case 'FST_ERR_MAX_PARAM_LENGTH':
        return clientError(414, 'bad_request', 'path: a path parameter is longer than the router accepts');
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return clientError(status, 'bad_request', error.message);
  }
  return { status: 500, body: body('internal_error', 'internal server error'), internal: true };
}

function clientError(status: number, code: string, message: string): MappedError {
  return { status, body: body(code, message), internal: false };
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && 'code' in error && typeof error.code === 'string';
}

/** Answers `error` in the catalogue's format (the router's own errors, which reach no error handler). */
export function replyWithError(reply: FastifyReply, error: unknown, limits: { bodyLimit: number }) {
  const mapped = mapError(error, limits);
  return reply.code(mapped.status).type('application/json; charset=utf-8').send(mapped.body);
}

/** Installs the catalogue as the app's error and not-found handlers. */
export function installErrorHandling(app: FastifyInstance, limits: { bodyLimit: number }): void {
  app.setErrorHandler((error, request, reply) => {
    const mapped = mapError(error, limits);
    if (mapped.internal) logInternal(request.log, error);
    if (mapped.retryAfterSeconds !== undefined) reply.header('retry-after', String(mapped.retryAfterSeconds));
    return reply.code(mapped.status).type('application/json; charset=utf-8').send(mapped.body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(body('route_not_found', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`)),
  );
}

function logInternal(log: FastifyBaseLogger, error: unknown): void {
  log.error({ err: error }, 'request failed');
}
