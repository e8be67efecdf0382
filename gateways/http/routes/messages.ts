import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { ContentType, HistoryMessageBody, Id, Limit, MessageBody } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * POST /api/v1/conversations/:id/messages (send; idempotent by client_message_id) and
 * GET /api/v1/conversations/:id/messages (history, ascending, paged backwards with `before`).
 */

const ConversationParams = z.object({ id: Id });

const SendBody = z.object({
  content: z.string(),
  content_type: ContentType.default('text'),
  client_message_id: z.string().min(1).max(128).optional(),
});

const HistoryQuery = z.object({
  limit: Limit(50, 200),
  /** A message_id of this conversation, or a sequence_number. */
  before: z.string().min(1).max(64).optional(),
});

export function messageRoutes(deps: RouteDeps): FastifyPluginAsync {
  const maxBytes = deps.settings.maxMessageBytes;

  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/conversations/:id/messages',
      { schema: { params: ConversationParams, body: SendBody, response: { 200: MessageBody, 201: MessageBody } } },
      async (request, reply) => {
        const me = caller(request);
        const { content, content_type, client_message_id } = request.body;
        if (content_type !== 'text') {
          throw new HttpError(
            'media_not_supported',
            `content_type: "${content_type}" messages need a media upload, which this server does not offer yet; send content_type "text"`,
          );
        }
        const bytes = Buffer.byteLength(content, 'utf8');
        if (bytes > maxBytes) {
          throw new HttpError('payload_too_large', `content: ${bytes} bytes of UTF-8, over the limit of ${maxBytes} bytes (MAX_MESSAGE_BYTES)`);
        }
        const sent = await deps.commands.sendMessage(
          me.userId,
          request.params.id,
          { content, content_type, media: null, client_message_id: client_message_id ?? null },
          request.id,
        );
        await deps.settle(sent.position, request.log);
        return reply.code(sent.created ? 201 : 200).send(sent.message);
      },
    );

    app.get(
      '/conversations/:id/messages',
      {
        schema: {
          params: ConversationParams,
          querystring: HistoryQuery,
          response: { 200: z.object({ messages: z.array(HistoryMessageBody), has_more: z.boolean() }) },
        },
      },
      async (request) => {
        const me = caller(request);
        const conversationId = request.params.id;
        await deps.commands.access(me.userId, conversationId);
        const { limit, before } = request.query;
        let beforeSequence: number | undefined;
        if (before !== undefined) {
          if (/^\d+$/.test(before)) {
            beforeSequence = Number(before);
          } else {
            const ref = await deps.queries.messageRef(before);
            if (!ref || ref.conversation_id !== conversationId) {
              throw new HttpError('invalid_cursor', `before: no message ${before} in this conversation`);
            }
            beforeSequence = ref.sequence_number;
          }
        }
        return deps.queries.history(conversationId, beforeSequence === undefined ? { limit } : { limit, beforeSequence });
      },
    );
  };
}
