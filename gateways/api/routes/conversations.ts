import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { DirectConversationBody, Id, InboxEntryBody, Limit } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';

/** POST /api/v1/conversations (open a direct conversation) and GET /api/v1/conversations (the inbox). */
export function conversationRoutes(deps: RouteDeps): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/conversations',
      {
        schema: {
          body: z.object({ participant_id: Id }),
          response: { 200: DirectConversationBody, 201: DirectConversationBody },
        },
      },
      async (request, reply) => {
        const me = caller(request);
        const opened = await deps.commands.openDirect(me.userId, request.body.participant_id, request.id);
        await deps.settle(opened.position, request.log);
        const c = opened.conversation;
        return reply.code(opened.created ? 201 : 200).send({
          conversation_id: c.conversation_id,
          type: 'one_on_one',
          participants: c.participants,
          created_at: c.created_at,
        });
      },
    );

    app.get(
      '/conversations',
      {
        schema: {
          querystring: z.object({ limit: Limit(50, 200) }),
          response: { 200: z.object({ conversations: z.array(InboxEntryBody) }) },
        },
      },
      async (request) => {
        const me = caller(request);
        return { conversations: await deps.queries.inbox(me.userId, { limit: request.query.limit }) };
      },
    );
  };
}
