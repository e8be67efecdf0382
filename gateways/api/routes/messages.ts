import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { ContentType, HistoryMessageBody, Id, Limit, MessageBody } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';
import type { MediaRef } from '../../../domain/conversation/events.js';
import { ClientMessageId, MAX_VERSION, text } from '../../../domain/fields.js';

/**
 * POST /api/v1/conversations/:id/messages (send; idempotent by client_message_id) and
 * GET /api/v1/conversations/:id/messages (history, ascending, paged backwards with `before`).
 */

const ConversationParams = z.object({ id: Id });

const SendBody = z.object({
  /** The text; for image / video / file a caption, which may be empty. */
  content: text().optional(),
  content_type: ContentType.default('text'),
  /** From POST /api/v1/media, after the upload: required for image / video / file. */
  media_id: Id.optional(),
  client_message_id: ClientMessageId.optional(),
});

/** `before`: a sequence_number (digits, 1..MAX_VERSION) or a message_id of this conversation. */
const Before = z.string().transform((raw, ctx): { sequence: number } | { messageId: string } => {
  if (/^\d+$/.test(raw)) {
    const sequence = Number(raw);
    if (sequence >= 1 && sequence <= MAX_VERSION) return { sequence };
    ctx.addIssue({ code: 'custom', message: `a sequence_number is from 1 to ${MAX_VERSION}` });
    return z.NEVER;
  }
  const id = Id.safeParse(raw);
  if (id.success) return { messageId: id.data };
  ctx.addIssue({ code: 'custom', message: `expected a sequence_number or a message_id: ${id.error.issues[0]?.message ?? 'invalid'}` });
  return z.NEVER;
});

const HistoryQuery = z.object({
  limit: Limit(50, 200),
  before: Before.optional(),
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
        const { content_type, media_id, client_message_id } = request.body;
        // Text needs its content; a media message's caption may be left out (empty).
        if (request.body.content === undefined && content_type === 'text') throw new HttpError('validation_error', 'content: Required');
        const content = request.body.content ?? '';
        const conversationId = request.params.id;
        const bytes = Buffer.byteLength(content, 'utf8');
        if (bytes > maxBytes) {
          throw new HttpError('payload_too_large', `content: ${bytes} bytes of UTF-8, over the limit of ${maxBytes} bytes (MAX_MESSAGE_BYTES)`);
        }
        let media: MediaRef | null = null;
        if (content_type === 'text') {
          if (media_id !== undefined) throw new HttpError('unexpected_media', 'media_id: a text message carries no media; send content_type image, video or file');
        } else {
          if (deps.media === undefined) {
            throw new HttpError('media_not_supported', `content_type: "${content_type}" messages need media uploads, which this server does not offer`);
          }
          if (media_id === undefined) {
            throw new HttpError('media_required', `media_id: required for content_type "${content_type}"; announce the upload with POST /api/v1/media`);
          }
          // Membership first (404 / 403), so a stranger learns nothing about the media.
          await deps.commands.access(me.userId, conversationId);
          media = await deps.media.attachable(me.userId, conversationId, content_type, media_id);
        }
        const sent = await deps.commands.sendMessage(
          me.userId,
          conversationId,
          { content, content_type, media, client_message_id: client_message_id ?? null },
          request.id,
        );
        await deps.settle(sent.position, request.log);
        const described = sent.message.media === null || deps.media === undefined ? null : await deps.media.describe([{ content_type: sent.message.content_type, media: sent.message.media }]);
        const view = sent.message.media === null ? null : (described?.get(sent.message.media.media_id) ?? null);
        return reply.code(sent.created ? 201 : 200).send({ ...sent.message, media: view });
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
          if ('sequence' in before) {
            beforeSequence = before.sequence;
          } else {
            const ref = await deps.queries.messageRef(before.messageId);
            if (!ref || ref.conversation_id !== conversationId) {
              throw new HttpError('invalid_cursor', `before: no message ${before.messageId} in this conversation`);
            }
            beforeSequence = ref.sequence_number;
          }
        }
        const page = await deps.queries.history(conversationId, beforeSequence === undefined ? { limit } : { limit, beforeSequence });
        const refs = page.messages.flatMap((m) => (m.media === null ? [] : [{ content_type: m.content_type, media: m.media }]));
        const described = refs.length === 0 || deps.media === undefined ? new Map() : await deps.media.describe(refs);
        return {
          ...page,
          messages: page.messages.map((m) => ({ ...m, media: m.media === null ? null : (described.get(m.media.media_id) ?? null) })),
        };
      },
    );
  };
}
