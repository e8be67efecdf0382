import type { StoredEvent } from '../../domain/ports/event-store.js';
import type { SqlClient } from '../../domain/ports/sql.js';
import type { ProjectedEvent } from '../runtime/decode.js';
import type { Projection } from '../runtime/runtime.js';
import { CONVERSATION_STREAM_PREFIX } from '../../domain/conversation/stream.js';

/**
 * `media-thumbnails`: one row per media attached to a message, the thumbnail's to-do list and its
 * outcome. The projection only records the work (cheaply, in the checkpoint's transaction, so no
 * message is ever forgotten across a crash); the thumbnail worker (worker.ts) does the slow part
 * outside any transaction and writes the outcome into the same row.
 *
 * status: `pending` (queued) → `ready` (thumbnail stored) | `none` (no thumbnail; `reason` says why).
 * Files get `none` at once. A rebuild (reset) empties the table; the replay queues every media
 * again and the worker remakes the thumbnails (same keys: idempotent).
 */

export const MEDIA_THUMBNAILS_PROJECTION = 'media-thumbnails';

export const NO_THUMBNAIL_FOR_FILES = 'files have no thumbnail';

export const MEDIA_THUMBNAILS_SCHEMA = `
CREATE TABLE IF NOT EXISTS media_thumbnails (
  media_id text PRIMARY KEY,
  conversation_id text NOT NULL,
  message_id text NOT NULL,
  content_type text NOT NULL,
  source_mime text NOT NULL,
  status text NOT NULL,
  thumbnail_key text,
  thumbnail_mime text,
  width int,
  height int,
  reason text,
  attempts int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS media_thumbnails_due ON media_thumbnails (next_attempt_at) WHERE status = 'pending';
`;

export type ThumbnailQueued = { shard: number; position: number };

const conversationOf = (stored: StoredEvent) => stored.stream_id.slice(CONVERSATION_STREAM_PREFIX.length);

export function createMediaThumbnailsProjection(options: { onQueued?: (at: ThumbnailQueued) => void } = {}): Projection {
  return {
    name: MEDIA_THUMBNAILS_PROJECTION,
    schema: MEDIA_THUMBNAILS_SCHEMA,
    tables: ['media_thumbnails'],
    async apply(tx: SqlClient, events: readonly ProjectedEvent[]) {
      const rows: { media_id: string; conversation_id: string; message_id: string; content_type: string; mime: string }[] = [];
      // Upcast (by the runtime, EVENTS.md "Versioning"): an old-schema MessageSent has no `media` field.
      for (const { stored, event } of events) {
        if (event?.type !== 'MessageSent') continue;
        const data = event.data;
        if (data.media === null) continue;
        rows.push({
          media_id: data.media.media_id,
          conversation_id: conversationOf(stored),
          message_id: data.message_id,
          content_type: data.content_type,
          mime: data.media.mime_type ?? 'application/octet-stream',
        });
      }
      if (rows.length === 0) return;
      // A media sent twice (a second message naming it) keeps its first row.
      await tx.query(
        `INSERT INTO media_thumbnails (media_id, conversation_id, message_id, content_type, source_mime, status, reason)
         SELECT u.media_id, u.conversation_id, u.message_id, u.content_type, u.mime,
                CASE WHEN u.content_type = 'file' THEN 'none' ELSE 'pending' END,
                CASE WHEN u.content_type = 'file' THEN $6 ELSE NULL END
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(media_id, conversation_id, message_id, content_type, mime)
         ON CONFLICT (media_id) DO NOTHING`,
        [rows.map((r) => r.media_id), rows.map((r) => r.conversation_id), rows.map((r) => r.message_id), rows.map((r) => r.content_type), rows.map((r) => r.mime), NO_THUMBNAIL_FOR_FILES],
      );
      const last = events[events.length - 1]!;
      if (rows.some((r) => r.content_type !== 'file')) options.onQueued?.({ shard: last.stored.shard, position: last.stored.position });
    },
  };
}
