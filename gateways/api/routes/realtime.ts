import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { forbidden } from '../../../domain/errors.js';
import type { Config } from '../../../infra/config/config.js';
import type { PresenceStore } from '../../ports/presence.js';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { Id } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * The REST side of the real-time signals, feeding the same presence store as
 * the WebSocket frames, and the discovery of the WebSocket endpoint:
 *
 * - GET  /realtime                        {websocket_url}
 * - POST /conversations/:id/typing        {is_typing}: members only
 * - PUT  /users/:user_id/presence         {status}: only for oneself (403 otherwise)
 * - GET  /users/:user_id/presence         oneself or a contact (someone sharing a conversation), 403 otherwise
 */
export type RealtimeRouteDeps = {
  presence: PresenceStore;
  /** What GET /realtime answers (websocketUrlOf): from configuration only, never from the request. */
  websocketUrl: () => string | null;
};

/**
 * The WebSocket URL clients are given: PUBLIC_WS_URL, else ws://HOST:<the gateway's bound port>/ws
 * (HOST 0.0.0.0 / :: becomes 127.0.0.1), else null (no gateway in this process and none
 * configured). Never built from a request's Host or X-Forwarded-* headers: anyone can set those,
 * and a reply (or a cache in front of the API) would then send clients, with their token in
 * Hello, to the attacker's host.
 */
export function websocketUrlOf(config: Pick<Config, 'publicWsUrl' | 'host'>, gatewayPort: number | null): string | null {
  if (config.publicWsUrl !== null) return config.publicWsUrl;
  if (gatewayPort === null) return null;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `ws://${host}:${gatewayPort}/ws`;
}

const PresenceBody = z.object({
  user_id: z.string(),
  status: z.enum(['online', 'away', 'offline']),
  last_seen: z.string().nullable(),
});

export function realtimeRoutes(deps: RouteDeps, realtime: RealtimeRouteDeps): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.get('/realtime', { schema: { response: { 200: z.object({ websocket_url: z.string().nullable() }) } } }, async (request) => {
      caller(request);
      return { websocket_url: realtime.websocketUrl() };
    });

    app.post(
      '/conversations/:id/typing',
      {
        schema: {
          params: z.object({ id: Id }),
          body: z.object({ is_typing: z.boolean() }),
          response: { 200: z.object({ conversation_id: z.string(), is_typing: z.boolean(), forwarded: z.boolean() }) },
        },
      },
      async (request) => {
        const me = caller(request);
        const recipients = await deps.commands.otherMembers(me.userId, request.params.id);
        const forwarded = await realtime.presence.typing(me.userId, request.params.id, request.body.is_typing, recipients);
        return { conversation_id: request.params.id, is_typing: request.body.is_typing, forwarded };
      },
    );

    app.put(
      '/users/:user_id/presence',
      {
        schema: {
          params: z.object({ user_id: Id }),
          body: z.object({ status: z.enum(['online', 'away', 'offline']) }),
          response: { 200: PresenceBody },
        },
      },
      async (request) => {
        const me = caller(request);
        if (request.params.user_id !== me.userId) throw forbidden('not_yourself', 'user_id: you may only set your own presence');
        await realtime.presence.setStatus(me.userId, request.body.status);
        const [presence] = await realtime.presence.get([me.userId]);
        return presence!;
      },
    );

    app.get(
      '/users/:user_id/presence',
      { schema: { params: z.object({ user_id: Id }), response: { 200: PresenceBody } } },
      async (request) => {
        const me = caller(request);
        const other = request.params.user_id;
        if (other !== me.userId && !(await deps.queries.isContact(me.userId, other))) {
          throw forbidden('not_a_contact', 'user_id: presence is visible to contacts only (people sharing a conversation)');
        }
        const [presence] = await realtime.presence.get([other]);
        return presence!;
      },
    );
  };
}
