import { stdSerializers } from 'pino';

/**
 * What keeps message text, tokens, passwords and signed URLs out of the logs:
 * serializers for the objects that carry them and pino redact paths for the rest. The root logger
 * (gateways/compose/process.ts, createRootLogger) uses them, so every child does; the REST API installs them on its own logger
 * as well, whatever logger it is given.
 *
 * - `req` (fastify's request log lines): the URL without its query string, which holds the
 *   signatures of the local-disk media URLs and whatever a client puts there (a `?token=`), and
 *   without a push token named in a path; no headers (Authorization, cookies).
 * - `err`: the error without the fields where database drivers copy the statement's values
 *   (`params`: PGlite; `parameters`) or a row's (`detail`: "Failing row contains (..."), which
 *   would put message text, e-mail addresses or password hashes in the log.
 */

/** Path segments that are secrets: a push token may name the device to delete. */
const SECRET_PATH_SEGMENTS: readonly RegExp[] = [/^(\/api\/v1\/devices\/)[^/]+/];

export function redactUrl(url: string): string {
  const cut = url.indexOf('?');
  let path = cut === -1 ? url : url.slice(0, cut);
  for (const pattern of SECRET_PATH_SEGMENTS) path = path.replace(pattern, '$1[redacted]');
  return cut === -1 ? path : `${path}?[redacted]`;
}

type RequestLike = {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number } | null;
};

/** fastify's request serializer, without the query string. */
export function safeRequest(req: RequestLike) {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : undefined,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/** Fields some errors carry that copy the values of a statement or a row. */
const VALUE_FIELDS = ['params', 'parameters', 'detail'] as const;

/** pino's error serializer, without the values of the failed statement. */
export function safeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const serialized: Record<string, unknown> = { ...stdSerializers.err(err) };
  for (const field of VALUE_FIELDS) if (field in serialized) serialized[field] = '[redacted]';
  return serialized;
}

export const SAFE_SERIALIZERS = Object.freeze({ req: safeRequest, err: safeError });

/** Paths pino redacts wherever a caller logs such a field by mistake. */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'password',
  '*.password',
  'token',
  '*.token',
  'content',
  '*.content',
  'refresh_token',
  '*.refresh_token',
  '*.current_password',
  '*.new_password',
]);
