import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { Emoji, line, MAX_EMOJI_CHARS } from '../../../domain/fields.js';
import { Id } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * POST /api/v1/messages/:message_id/reactions {emoji}: one RGI emoji, at most
 * MAX_REACTIONS_PER_USER_AND_MESSAGE distinct ones per user and message (the decider's rules).
 * DELETE .../reactions/:emoji (URL-encoded): any reaction the caller has, including one added
 * before reactions were limited to emoji. Members only.
 */

/** What a reaction added before the emoji rule may hold: one line of up to 32 characters. */
const StoredReaction = line(1, MAX_EMOJI_CHARS);

const ReactionReply = z.object({ message_id: z.string(), conversation_id: z.string(), user_id: z.string(), emoji: z.string() });

export function reactionRoutes(deps: RouteDeps): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/messages/:message_id/reactions',
      { schema: { params: z.object({ message_id: Id }), body: z.object({ emoji: Emoji }), response: { 200: ReactionReply, 201: ReactionReply } } },
      async (request, reply) => {
        const me = caller(request);
        const ref = await deps.requireMessage(me.userId, request.params.message_id);
        const { emoji } = request.body;
        const outcome = await deps.commands.react(me.userId, ref.conversation_id, ref, emoji, 'add', request.id);
        await deps.settle(outcome.position, request.log);
        return reply
          .code(outcome.changed ? 201 : 200)
          .send({ message_id: ref.message_id, conversation_id: ref.conversation_id, user_id: me.userId, emoji });
      },
    );

    app.delete(
      '/messages/:message_id/reactions/:emoji',
      { schema: { params: z.object({ message_id: Id, emoji: StoredReaction }) } },
      async (request, reply) => {
        const me = caller(request);
        const ref = await deps.requireMessage(me.userId, request.params.message_id);
        const outcome = await deps.commands.react(me.userId, ref.conversation_id, ref, request.params.emoji, 'remove', request.id);
        await deps.settle(outcome.position, request.log);
        return reply.code(204).send();
      },
    );
  };
}
