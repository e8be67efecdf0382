import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { FileName, line, MAX_MIME_TYPE_CHARS } from '../../../domain/fields.js';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { Id } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';
import type { MediaService } from '../../media/service.js';

/**
 * POST /api/v1/media: announce an upload → a presigned PUT (members of the conversation only).
 * GET /api/v1/media/:media_id: a short-lived presigned GET (members only).
 * The bytes never pass through these routes: the client PUTs / GETs the presigned URL.
 */

const AnnounceBody = z.object({
  content_type: line(3, MAX_MIME_TYPE_CHARS),
  size_bytes: z.number().int().min(1),
  file_name: FileName,
  conversation_id: Id,
});

const AnnounceReply = z.object({
  media_id: z.string(),
  upload_url: z.string(),
  upload_method: z.literal('PUT'),
  upload_headers: z.record(z.string(), z.string()),
  expires_at: z.string(),
  content_type: z.string(),
  size_bytes: z.number().int(),
  file_name: z.string(),
});

const DownloadReply = z.object({
  media_id: z.string(),
  url: z.string(),
  expires_at: z.string(),
  mime_type: z.string(),
  size_bytes: z.number().int(),
  file_name: z.string(),
});

export function mediaRoutes(deps: RouteDeps & { media: MediaService }): FastifyPluginAsync {
  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.post('/media', { schema: { body: AnnounceBody, response: { 201: AnnounceReply } } }, async (request, reply) => {
      const me = caller(request);
      return reply.code(201).send(await deps.media.announce(me.userId, request.body));
    });

    app.get('/media/:media_id', { schema: { params: z.object({ media_id: Id }), response: { 200: DownloadReply } } }, async (request, reply) => {
      const me = caller(request);
      reply.header('cache-control', 'no-store');
      return deps.media.download(me.userId, request.params.media_id);
    });
  };
}

