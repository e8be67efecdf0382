import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';

/**
 * Security headers on every reply of the REST API, by helmet (the library @fastify/helmet
 * wraps) with settings for a JSON API, plus `Cache-Control: no-store` on whatever sets no caching
 * of its own (every JSON reply is private to its caller):
 *
 * - `X-Content-Type-Options: nosniff`: a browser never reads a reply as another type than it says;
 * - `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` and
 *   `X-Frame-Options: DENY`: a reply opened in a browser runs nothing, loads nothing and is
 *   framed by no page;
 * - `Referrer-Policy: no-referrer`, `Cross-Origin-Resource-Policy: same-origin`,
 *   `Cross-Origin-Opener-Policy: same-origin`, `Strict-Transport-Security` (one year; browsers
 *   heed it over HTTPS only), and helmet's other defaults.
 *
 * helmet itself rather than @fastify/helmet: the plugin sets the headers in an onRequest hook,
 * and Fastify runs no hook for a request its router refuses (a path that does not decode), whose
 * reply would go out bare; `applySecurityHeaders` is the one function both the hook and that
 * refusal (app.ts, frameworkErrors) call.
 *
 * The local-disk media route (routes/media-files.ts) serves user bytes and sets its own headers
 * over these (a route's headers win over ones set here): a sandboxing CSP,
 * `Content-Disposition: attachment`, private caching for the lifetime of its signed URL, and a
 * cross-origin resource policy so that apps can show thumbnails from another origin.
 */
const setHelmetHeaders = helmet({
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  xFrameOptions: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
});

/** Sets the headers on a raw response (before its head is written). */
export function applySecurityHeaders(request: IncomingMessage, response: ServerResponse): void {
  setHelmetHeaders(request, response, () => {});
  response.setHeader('cache-control', 'no-store');
}

/** Register before the routes and the rate limiter, so that their replies carry the headers too. */
export function useSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    applySecurityHeaders(request.raw, reply.raw);
    done();
  });
}
