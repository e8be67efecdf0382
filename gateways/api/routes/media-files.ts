import type { FastifyPluginAsync } from 'fastify';
import { contentDisposition } from '../../../infra/object-store/content-disposition.js';
import { SignedUrlError, type LocalDiskObjectStore } from '../../../infra/object-store/local-disk.js';
import { HttpError, type HttpErrorCode } from '../errors.js';

/**
 * The local-disk object store's signed URLs: PUT <prefix>/<key>?... (upload) and GET (download).
 * Outside the bearer-token scope: the URL's signature is the authorisation. The upload body is
 * streamed to disk (never buffered, never parsed): this scope has one catch-all content-type
 * parser that hands the raw stream over, so the JSON body limit does not apply; the store caps
 * the size (MEDIA_MAX_BYTES) and checks it against Content-Length and the signed size.
 */

const CODES: Record<SignedUrlError['code'], HttpErrorCode> = {
  signature_invalid: 'signature_invalid',
  url_expired: 'url_expired',
  length_required: 'length_required',
  upload_size_mismatch: 'upload_size_mismatch',
  media_too_large: 'media_too_large',
  object_not_found: 'media_not_found',
};

const asHttp = (error: unknown) => (error instanceof SignedUrlError ? new HttpError(CODES[error.code], error.message) : error);

export function mediaFileRoutes(store: LocalDiskObjectStore): FastifyPluginAsync {
  return async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    const keyOf = (params: unknown) => String((params as { '*'?: string })['*'] ?? '');
    const queryOf = (query: unknown) => (query ?? {}) as Record<string, string | string[] | undefined>;

    app.put(`${store.routePrefix}/*`, async (request, reply) => {
      try {
        await store.receive({
          key: keyOf(request.params),
          query: queryOf(request.query),
          contentType: request.headers['content-type'],
          contentLength: request.headers['content-length'],
          body: request.raw,
        });
      } catch (error) {
        // The rest of a refused body is not read: close the connection after the reply.
        reply.header('connection', 'close');
        throw asHttp(error);
      }
      return reply.code(200).send();
    });

    app.get(`${store.routePrefix}/*`, async (request, reply) => {
      let object: Awaited<ReturnType<LocalDiskObjectStore['open']>>;
      try {
        object = await store.open({ key: keyOf(request.params), query: queryOf(request.query) });
      } catch (error) {
        throw asHttp(error);
      }
      // User bytes: never sniffed, never run (a sandboxed document with no sources), saved rather
      // than shown when opened as a page (an <img> of a thumbnail still shows), embeddable from
      // the app's origin (the signed URL is the authorisation), cached by the client alone.
      reply
        .header('content-type', object.contentType ?? 'application/octet-stream')
        .header('content-length', String(object.sizeBytes))
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .header('content-disposition', object.fileName !== null ? contentDisposition(object.fileName) : 'attachment')
        .header('cross-origin-resource-policy', 'cross-origin')
        .header('cache-control', 'private, max-age=300');
      return reply.send(object.body);
    });
  };
}
