import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance } from 'fastify';
import { identify, requireUser } from './auth.js';
import { createMessageLookup, createReadYourWrites, type AppDeps, type RouteDeps } from './deps.js';
import { HttpError, installErrorHandling, replyWithError } from './errors.js';
import { authRoutes, sessionRoutes, type AuthRouteDeps } from './routes/auth.js';
import { clientKey, createFailureLimit, createHashingLimit } from './failure-limit.js';
import { conversationRoutes } from './routes/conversations.js';
import { groupRoutes } from './routes/groups.js';
import { healthRoutes } from './routes/health.js';
import { mediaFileRoutes } from './routes/media-files.js';
import { mediaRoutes } from './routes/media.js';
import { messageRoutes } from './routes/messages.js';
import { reactionRoutes } from './routes/reactions.js';
import { realtimeRoutes, type RealtimeRouteDeps } from './routes/realtime.js';
import { receiptRoutes } from './routes/receipts.js';
import { searchRoutes } from './routes/search.js';
import { deviceRoutes } from './routes/devices.js';
import { applySecurityHeaders, useSecurityHeaders } from './security-headers.js';
import { SAFE_SERIALIZERS } from '../lib/log-safety.js';
import { useZod } from './zod.js';

export type { AppDeps } from './deps.js';

/** Room around the largest message for JSON escaping and the other fields. */
export const bodyLimitFor = (maxMessageBytes: number) => maxMessageBytes * 4 + 16 * 1024;

/**
 * The REST API as a fastify instance, not listening: gateways/main.ts listens, tests inject().
 *
 * Scopes: /healthz, /readyz and /api/v1/auth/{register,login,refresh} are public (rate-limited by client
 * address); everything else under /api/v1 checks the bearer token first, then counts against the
 * caller's user id, or against the client address when the token is missing or not valid (auth.ts:
 * the request is answered 401 only after the rate limit counted it). Failed logins and bad tokens
 * also count against a smaller per-address failure budget (failure-limit.ts).
 * With `realtime` (the presence store and the WebSocket port), the real-time routes are added.
 */
export async function buildApp(deps: AppDeps, realtime?: RealtimeRouteDeps): Promise<FastifyInstance> {
  const bodyLimit = bodyLimitFor(deps.settings.maxMessageBytes);
  const app = Fastify({
    // Request lines without query strings, errors without statement values, whatever logger is given.
    loggerInstance: deps.logger.child({}, { serializers: SAFE_SERIALIZERS }),
    bodyLimit,
    return503OnClosing: true,
    // A path parameter may be a push token (DELETE /devices/{token}): up to 4,096 characters,
    // three times that URL-encoded; the default 100 answered real FCM tokens 414.
    routerOptions: { maxParamLength: 3 * 4096 },
    // Behind trusted reverse proxies request.ip (the per-address limits' key) is the right-most
    // X-Forwarded-For entry that is not a trusted proxy, as the gateway reads it (client-address.ts).
    trustProxy: deps.settings.trustedProxies.length > 0 ? [...deps.settings.trustedProxies] : false,
    // Errors the router raises before any route or hook (a path that does not decode): the catalogue's format too.
    frameworkErrors: (error, request, reply) => {
      applySecurityHeaders(request.raw, reply.raw);
      return replyWithError(reply, error, { bodyLimit });
    },
  });
  useZod(app);
  // JSON only: a text/plain body gets 415 rather than a confusing "expected object".
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app, { bodyLimit });
  app.decorateRequest('user', null);
  app.decorateRequest('authFailure', null);
  useSecurityHeaders(app);

  const windowMs = deps.settings.rateLimitWindowMs;
  await app.register(rateLimit, {
    global: true,
    max: deps.settings.rateLimitMax,
    timeWindow: windowMs,
    // Route-level onRequest hooks run after the scope's: the caller is authenticated by then.
    hook: 'onRequest',
    keyGenerator: clientKey,
    errorResponseBuilder: (_request, context) =>
      new HttpError('rate_limited', `rate limit exceeded: at most ${context.max} requests per ${windowMs} ms; retry in ${context.after}`),
    // In Redis, every API process counts against one budget per user and per address. While Redis
    // cannot be asked, requests are let through uncounted: an outage of the counter must not become
    // an outage of the API (the per-account login throttle, in the database, still holds).
    ...(deps.rateLimitStore === undefined ? {} : { redis: deps.rateLimitStore.redis, nameSpace: deps.rateLimitStore.prefix, skipOnError: true }),
  });

  const failures = createFailureLimit(app, { max: deps.settings.authFailureLimitMax, windowMs });
  const authDeps: AuthRouteDeps = {
    accounts: deps.accounts,
    failures,
    passwordMinLength: deps.settings.passwordMinLength,
    hashingLimit: createHashingLimit(app, { max: deps.settings.authRateLimitMax, windowMs }),
  };

  const routeDeps: RouteDeps = { ...deps, settle: createReadYourWrites(deps), requireMessage: createMessageLookup(deps) };
  await app.register(healthRoutes(deps.health));
  // Signed URLs of the local-disk media store: the signature is the authorisation (no bearer token).
  if (deps.mediaFiles !== undefined) await app.register(mediaFileRoutes(deps.mediaFiles));
  await app.register(authRoutes(authDeps), { prefix: '/api/v1/auth' });
  await app.register(
    async (api) => {
      // identify runs before the route-level rate-limit hook, requireUser after it (auth.ts).
      api.addHook('onRequest', identify(deps.access));
      api.addHook('preParsing', requireUser(failures));
      await api.register(sessionRoutes(authDeps));
      await api.register(conversationRoutes(routeDeps));
      await api.register(messageRoutes(routeDeps));
      await api.register(groupRoutes(routeDeps));
      await api.register(receiptRoutes(routeDeps));
      await api.register(reactionRoutes(routeDeps));
      await api.register(searchRoutes(routeDeps));
      if (deps.media !== undefined) await api.register(mediaRoutes({ ...routeDeps, media: deps.media }));
      if (deps.devices !== undefined) await api.register(deviceRoutes(deps.devices));
      if (realtime !== undefined) await api.register(realtimeRoutes(routeDeps, realtime));
    },
    { prefix: '/api/v1' },
  );
  return app;
}
