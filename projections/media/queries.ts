import type { SqlClient } from '../../domain/ports/sql.js';

/** Reads of the `media-thumbnails` read model. */

export type ThumbnailRow = {
  media_id: string;
  status: 'pending' | 'ready' | 'none';
  thumbnail_key: string | null;
  thumbnail_mime: string | null;
  width: number | null;
  height: number | null;
  reason: string | null;
};

export interface MediaThumbnailQueries {
  /** The thumbnail rows of these media (absent: not queued yet). */
  byMediaIds(mediaIds: string[]): Promise<Map<string, ThumbnailRow>>;
}

export function createMediaThumbnailQueries(db: SqlClient): MediaThumbnailQueries {
  return {
    /** The thumbnail rows of these media (absent: not queued yet). */
    async byMediaIds(mediaIds: string[]): Promise<Map<string, ThumbnailRow>> {
      const out = new Map<string, ThumbnailRow>();
      if (mediaIds.length === 0) return out;
      const { rows } = await db.query<ThumbnailRow>(
        'SELECT media_id, status, thumbnail_key, thumbnail_mime, width, height, reason FROM media_thumbnails WHERE media_id = ANY($1::text[])',
        [mediaIds],
      );
      for (const r of rows) {
        const status = r.status === 'ready' || r.status === 'none' ? r.status : 'pending';
        out.set(r.media_id, { ...r, status, width: r.width === null ? null : Number(r.width), height: r.height === null ? null : Number(r.height) });
      }
      return out;
    },
  };
}
