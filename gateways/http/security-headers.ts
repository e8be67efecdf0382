import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

/**
 * Security headers on every reply of the REST API (errors, 404s and 429s included), by
 * @fastify/helmet with settings for a JSON API, plus `Cache-Control: no-store` for whatever does
 * not set its own caching (every JSON reply is private to its caller):
 *
 * - `X-Content-Type-Options: nosniff`: a browser never reads a reply as another type than it says;
 * - `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` and
 *   `X-Frame-Options: DENY`: a reply opened in a browser runs nothing, loads nothing and is
 *   framed by no page;
 * - `Referrer-Policy: no-referrer`, `Cross-Origin-Resource-Policy: same-origin`,
 *   `Cross-Origin-Opener-Policy: same-origin`, `Strict-Transport-Security` (one year; browsers
 *   heed it over HTTPS only), and helmet's other defaults.
 *
 * The local-disk media route (routes/media-files.ts) serves user bytes and sets its own headers
 * over these: a sandboxing CSP, `Content-Disposition: attachment`, private caching for the
 * lifetime of its signed URL, and a cross-origin resource policy so that apps can show
 * thumbnails from another origin.
 *
 * Register before the routes and the rate limiter, so their replies carry the headers too.
 */
export async function useSecurityHeaders(app: FastifyInstance): Promise<void> {
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
}
