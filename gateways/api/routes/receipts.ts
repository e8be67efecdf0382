import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { DeviceId } from '../../../domain/fields.js';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { Id, MessageStatusBody } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * PUT /api/v1/messages/:message_id/status: the caller has received / read up to this message (a
 * watermark for the conversation; it only moves forward). GET: the message's status, for its sender.
 */

const MessageParams = z.object({ message_id: Id });

const MarkReply = z.object({
  message_id: z.string(),
  conversation_id: z.string(),
  status: z.enum(['delivered', 'read']),
  delivered_up_to: z.number().int(),
  read_up_to: z.number().int(),
});

export function receiptRoutes(deps: RouteDeps): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.put(
      '/messages/:message_id/status',
      {
        schema: {
          params: MessageParams,
          headers: z.looseObject({ 'x-device-id': DeviceId.default('default') }),
          body: z.object({ status: z.enum(['delivered', 'read']) }),
          response: { 200: MarkReply },
        },
      },
      async (request) => {
        const me = caller(request);
        const ref = await deps.requireMessage(me.userId, request.params.message_id);
        await deps.commands.access(me.userId, ref.conversation_id);
        const marked = await deps.commands.markWatermark(
          me.userId,
          ref.conversation_id,
          { kind: request.body.status, device_id: request.headers['x-device-id'], up_to_version: ref.sequence_number },
          request.id,
        );
        await deps.settle(marked.position, request.log);
        return {
          message_id: ref.message_id,
          conversation_id: ref.conversation_id,
          status: request.body.status,
          delivered_up_to: marked.watermarks.delivered_up_to,
          read_up_to: marked.watermarks.read_up_to,
        };
      },
    );

    app.get(
      '/messages/:message_id/status',
      { schema: { params: MessageParams, response: { 200: MessageStatusBody } } },
      async (request) => {
        const me = caller(request);
        const ref = await deps.requireMessage(me.userId, request.params.message_id);
        await deps.commands.access(me.userId, ref.conversation_id);
        if (ref.sender_id !== me.userId) {
          throw new HttpError('not_message_sender', 'only the sender of a message sees its per-recipient status');
        }
        const status = await deps.queries.messageStatus(ref.message_id);
        if (!status) throw new HttpError('message_not_found', `message_id: no message ${ref.message_id}`);
        return status;
      },
    );
  };
}
