import type { SqlDatabase } from '../../domain/ports/sql.js';
import type { MediaRecord, MediaRegistry } from '../../gateways/ports/media.js';

/** The media registry on SQL (PostgreSQL or PGlite, in the primary database). */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS media_objects (
  media_id text PRIMARY KEY,
  conversation_id text NOT NULL,
  uploader_id text NOT NULL,
  object_key text NOT NULL,
  mime_type text NOT NULL,
  size_bytes bigint NOT NULL,
  file_name text NOT NULL,
  created_at timestamptz NOT NULL
);
ALTER TABLE media_objects ADD COLUMN IF NOT EXISTS sealed_key text;`;

type Row = Omit<MediaRecord, 'size_bytes' | 'created_at'> & { size_bytes: string | number; created_at: unknown };

export function createSqlMediaRegistry(db: SqlDatabase) {
  return {
    async ensureSchema() {
      await db.exec(SCHEMA);
    },

    async announce(r) {
      await db.query(
        `INSERT INTO media_objects (media_id, conversation_id, uploader_id, object_key, mime_type, size_bytes, file_name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz)`,
        [r.media_id, r.conversation_id, r.uploader_id, r.object_key, r.mime_type, r.size_bytes, r.file_name, r.created_at],
      );
    },

    async find(mediaId) {
      const { rows } = await db.query<Row>(
        'SELECT media_id, conversation_id, uploader_id, object_key, sealed_key, mime_type, size_bytes, file_name, created_at FROM media_objects WHERE media_id = $1',
        [mediaId],
      );
      const r = rows[0];
      if (!r) return null;
      const at = r.created_at instanceof Date ? r.created_at : new Date(String(r.created_at));
      return { ...r, sealed_key: r.sealed_key ?? null, size_bytes: Number(r.size_bytes), created_at: at.toISOString() };
    },

    async seal(mediaId, sealedKey) {
      const won = await db.query<{ sealed_key: string }>('UPDATE media_objects SET sealed_key = $2 WHERE media_id = $1 AND sealed_key IS NULL RETURNING sealed_key', [
        mediaId,
        sealedKey,
      ]);
      if (won.rows[0] !== undefined) return won.rows[0].sealed_key;
      // Lost (or unknown): a new statement sees the seal that won, committed before this one's UPDATE gave up.
      const { rows } = await db.query<{ sealed_key: string | null }>('SELECT sealed_key FROM media_objects WHERE media_id = $1', [mediaId]);
      return rows[0]?.sealed_key ?? null;
    },
  } satisfies MediaRegistry;
}
