import type { ConversationCommands } from '../../commands/conversations.js';
import type { ContentType, MediaRef } from '../../domain/conversation/events.js';
import { conflict, forbidden, isDomainError, notFound, validation } from '../../domain/errors.js';
import type { MediaConfig } from '../../infra/config/config.js';
import type { MediaRecord, MediaRegistry } from '../ports/media.js';
import type { ObjectInfo, ObjectStore } from '../ports/object-store.js';
import { mediaObjectKey, sealedMediaKey } from '../../projections/media/keys.js';
import { NO_THUMBNAIL_FOR_FILES } from '../../projections/media/projection.js';
import type { MediaThumbnailQueries } from '../../projections/media/queries.js';

/**
 * Media for the REST API: announce an upload (a presigned PUT), check an upload before a message
 * may name it, hand out presigned downloads, and describe the media of messages (with their
 * thumbnails) for history.
 */

export type MediaSettings = Pick<MediaConfig, 'maxBytes' | 'allowedTypes' | 'uploadUrlTtlSeconds' | 'downloadUrlTtlSeconds'>;

export type MediaServiceDeps = {
  settings: MediaSettings;
  registry: MediaRegistry;
  objects: ObjectStore;
  thumbnails: MediaThumbnailQueries;
  commands: Pick<ConversationCommands, 'access'>;
  clock: () => Date;
  newId: () => string;
  /** Where failures that do not reach the client are reported (a leftover copy not deleted). */
  onError?: (error: unknown, what: string) => void;
};

export type ThumbnailView = {
  status: 'ready' | 'pending' | 'none';
  url: string | null;
  expires_at: string | null;
  mime_type: string | null;
  width: number | null;
  height: number | null;
  reason: string | null;
};

export type MediaView = { media_id: string; mime_type: string | null; size_bytes: number | null; file_name: string | null; thumbnail: ThumbnailView };

export type Announcement = { content_type: string; size_bytes: number; file_name: string; conversation_id: string };

export interface MediaService {
  readonly settings: MediaSettings;
  announce(actor: string, a: Announcement): Promise<{
    media_id: string;
    upload_url: string;
    upload_method: 'PUT';
    upload_headers: Record<string, string>;
    expires_at: string;
    content_type: string;
    size_bytes: number;
    file_name: string;
  }>;
  /**
   * The MediaRef a message of `contentType` may carry, after checking that `mediaId` was
   * announced by `actor` for this conversation and that the upload is there, whole, of the
   * announced size and type; the upload is sealed on the way (`seal`). The caller has checked
   * membership.
   */
  attachable(actor: string, conversationId: string, contentType: ContentType, mediaId: string): Promise<MediaRef>;
  /** A short-lived presigned GET of the media, for a member of its conversation. */
  download(actor: string, mediaId: string): Promise<{
    media_id: string;
    url: string;
    expires_at: string;
    mime_type: string;
    size_bytes: number;
    file_name: string;
  }>;
  /**
   * The media of these messages with their thumbnails (a presigned URL when ready). Before the
   * media-thumbnails projection has its row: `pending`, or `none` for a file (it never gets one).
   */
  describe(messages: {
    content_type: ContentType;
    media: MediaRef;
  }[]): Promise<Map<string, MediaView>>;
}

/** `image/PNG; charset=x` → `image/png`. */
export const normalizeMimeType = (raw: string) => raw.split(';')[0]!.trim().toLowerCase();

/** A file name as a client may show it: no directories, no control characters, at most 255 characters. */
export function cleanFileName(raw: string): string {
  const base = raw.split(/[/\\]/).pop() ?? '';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the control characters from a client's file name
  return [...base.replace(/[\u0000-\u001f\u007f]/g, '').trim()].slice(0, 255).join('');
}

const KIND_PREFIX: Partial<Record<ContentType, string>> = { image: 'image/', video: 'video/' };

export function createMediaService(deps: MediaServiceDeps): MediaService {
  const { settings } = deps;

  function allowed(mime: string): boolean {
    return settings.allowedTypes.some((t) => t === mime || (t.endsWith('/*') && mime.startsWith(t.slice(0, -1))));
  }

  /** Throws media_mismatch unless `info` is what `record` announced. */
  function checkMatches(record: MediaRecord, info: ObjectInfo, what: string): void {
    if (info.sizeBytes !== record.size_bytes) {
      throw conflict('media_mismatch', `media_id: ${what} is ${info.sizeBytes} bytes but size_bytes announced ${record.size_bytes}; announce and upload again`);
    }
    if (info.contentType !== null && normalizeMimeType(info.contentType) !== record.mime_type) {
      throw conflict('media_mismatch', `media_id: ${what} is ${info.contentType} but content_type announced ${record.mime_type}; announce and upload again`);
    }
  }

  async function removeQuietly(key: string): Promise<void> {
    try {
      await deps.objects.delete(key);
    } catch (error) {
      deps.onError?.(error, `delete ${key}`);
    }
  }

  /**
   * Makes the upload write-once from the moment a message names it: the upload URL can be used
   * again until it expires, so the bytes a message names are copied (inside the store) to a key no
   * upload URL names, the copy is checked against the announcement, and the registry records it
   * (the first seal wins; a later send of the same media uses it and copies nothing). Downloads and
   * thumbnails read the sealed copy. The upload itself is deleted once sealed.
   */
  async function seal(record: MediaRecord): Promise<void> {
    const notUploaded = () =>
      conflict('media_not_uploaded', `media_id: nothing was uploaded for ${record.media_id} yet; PUT the file to its upload_url, then send the message`);
    if (record.sealed_key !== null) {
      const sealed = await deps.objects.head(record.sealed_key);
      if (sealed === null) throw notUploaded();
      checkMatches(record, sealed, 'the stored media');
      return;
    }
    const upload = await deps.objects.head(record.object_key);
    if (upload === null) throw notUploaded();
    checkMatches(record, upload, 'the upload');
    const candidate = sealedMediaKey(record.conversation_id, record.media_id, deps.newId());
    const copied = await deps.objects.copy(record.object_key, candidate);
    if (copied === null) {
      // Gone since the head: another send sealed it (and deleted the upload), or it was never whole.
      const again = await deps.registry.find(record.media_id);
      if (again?.sealed_key != null) return seal(again);
      throw notUploaded();
    }
    try {
      checkMatches(record, copied, 'the upload');
    } catch (error) {
      await removeQuietly(candidate);
      throw error;
    }
    const recorded = await deps.registry.seal(record.media_id, candidate);
    if (recorded !== candidate) {
      // Another send sealed it first: its copy is the one messages name.
      await removeQuietly(candidate);
      if (recorded === null) throw notFound('media_not_found', `media_id: no media ${record.media_id}`);
      return;
    }
    await removeQuietly(record.object_key);
  }

  return {
    settings,

    async announce(actor: string, a: Announcement) {
      const mime = normalizeMimeType(a.content_type);
      if (!allowed(mime)) {
        throw validation('media_type_not_allowed', `content_type: "${mime}" is not allowed here; allowed: ${settings.allowedTypes.join(', ')} (MEDIA_ALLOWED_TYPES)`);
      }
      if (a.size_bytes > settings.maxBytes) {
        throw validation('media_too_large', `size_bytes: ${a.size_bytes} bytes is over the limit of ${settings.maxBytes} bytes (MEDIA_MAX_BYTES)`);
      }
      const fileName = cleanFileName(a.file_name);
      if (fileName === '') throw validation('validation_error', 'file_name: empty once directories and control characters are removed', { field: 'file_name' });
      await deps.commands.access(actor, a.conversation_id);
      const mediaId = deps.newId();
      const key = mediaObjectKey(a.conversation_id, mediaId);
      await deps.registry.announce({
        media_id: mediaId,
        conversation_id: a.conversation_id,
        uploader_id: actor,
        object_key: key,
        mime_type: mime,
        size_bytes: a.size_bytes,
        file_name: fileName,
        created_at: deps.clock().toISOString(),
      });
      const upload = await deps.objects.presignPut(key, { contentType: mime, sizeBytes: a.size_bytes, expiresInSeconds: settings.uploadUrlTtlSeconds });
      return {
        media_id: mediaId,
        upload_url: upload.url,
        upload_method: upload.method,
        upload_headers: upload.headers,
        expires_at: upload.expiresAt.toISOString(),
        content_type: mime,
        size_bytes: a.size_bytes,
        file_name: fileName,
      };
    },

    /**
     * The MediaRef a message of `contentType` may carry, after checking that `mediaId` was
     * announced by `actor` for this conversation and that the upload is there, whole, of the
     * announced size and type; the upload is sealed on the way (`seal`). The caller has checked
     * membership.
     */
    async attachable(actor: string, conversationId: string, contentType: ContentType, mediaId: string): Promise<MediaRef> {
      const record = await deps.registry.find(mediaId);
      if (record === null) throw notFound('media_not_found', `media_id: no media ${mediaId}; announce it with POST /api/v1/media first`);
      if (record.uploader_id !== actor) throw forbidden('media_not_yours', `media_id: ${mediaId} was announced by another user; announce your own upload`);
      if (record.conversation_id !== conversationId) {
        throw conflict('media_wrong_conversation', `media_id: ${mediaId} was announced for another conversation; announce it for this one`);
      }
      const prefix = KIND_PREFIX[contentType];
      if (prefix !== undefined && !record.mime_type.startsWith(prefix)) {
        throw validation('media_kind_mismatch', `content_type: "${contentType}" needs ${prefix}* media; ${mediaId} is ${record.mime_type} (send it as "file")`);
      }
      await seal(record);
      return { media_id: record.media_id, mime_type: record.mime_type, size_bytes: record.size_bytes, file_name: record.file_name };
    },

    /** A short-lived presigned GET of the media, for a member of its conversation. */
    async download(actor: string, mediaId: string) {
      const record = await deps.registry.find(mediaId);
      const unknown = () => notFound('media_not_found', `media_id: no media ${mediaId}`);
      if (record === null) throw unknown();
      // Media of a conversation the caller is not in gets the unknown id's answer.
      await deps.commands.access(actor, record.conversation_id).catch((error: unknown) => {
        throw isDomainError(error, 'conversation_not_found') ? unknown() : error;
      });
      // The sealed copy once a message named it; the upload itself before (and for media sent before sealing existed).
      const key = record.sealed_key ?? record.object_key;
      if ((await deps.objects.head(key)) === null) {
        throw conflict('media_not_uploaded', `media_id: nothing was uploaded for ${mediaId} yet`);
      }
      const link = await deps.objects.presignGet(key, { expiresInSeconds: settings.downloadUrlTtlSeconds, fileName: record.file_name });
      return {
        media_id: record.media_id,
        url: link.url,
        expires_at: link.expiresAt.toISOString(),
        mime_type: record.mime_type,
        size_bytes: record.size_bytes,
        file_name: record.file_name,
      };
    },

    /**
     * The media of these messages with their thumbnails (a presigned URL when ready). Before the
     * media-thumbnails projection has its row: `pending`, or `none` for a file (it never gets one).
     */
    async describe(messages: { content_type: ContentType; media: MediaRef }[]): Promise<Map<string, MediaView>> {
      const rows = await deps.thumbnails.byMediaIds([...new Set(messages.map((m) => m.media.media_id))]);
      const out = new Map<string, MediaView>();
      for (const { content_type, media: ref } of messages) {
        if (out.has(ref.media_id)) continue;
        const row = rows.get(ref.media_id);
        const thumbnail: ThumbnailView =
          row === undefined && content_type === 'file'
            ? { status: 'none', url: null, expires_at: null, mime_type: null, width: null, height: null, reason: NO_THUMBNAIL_FOR_FILES }
            : { status: row?.status ?? 'pending', url: null, expires_at: null, mime_type: null, width: null, height: null, reason: row?.reason ?? null };
        if (row?.status === 'ready' && row.thumbnail_key !== null) {
          const link = await deps.objects.presignGet(row.thumbnail_key, { expiresInSeconds: settings.downloadUrlTtlSeconds });
          Object.assign(thumbnail, { url: link.url, expires_at: link.expiresAt.toISOString(), mime_type: row.thumbnail_mime, width: row.width, height: row.height });
        }
        out.set(ref.media_id, {
          media_id: ref.media_id,
          mime_type: ref.mime_type ?? null,
          size_bytes: ref.size_bytes ?? null,
          file_name: ref.file_name ?? null,
          thumbnail,
        });
      }
      return out;
    },
  };
}
