import type { Readable } from 'node:stream';

/**
 * Media ports: the registry of announced uploads, and the thumbnailer.
 *
 * The registry is a plain table, like users, not an event stream: an announcement is a promise
 * to upload, not a fact of the conversation; the fact is the MessageSent that names the media
 * (domain/conversation/events.ts MediaRef), checked against the registry and the object store.
 */

export type MediaRecord = {
  media_id: string;
  conversation_id: string;
  /** The user who announced it; only they may send it. */
  uploader_id: string;
  /** Where the upload URL writes. */
  object_key: string;
  /**
   * The write-once copy messages name, made when the first message named the media (a key no
   * upload URL names); null until then, and for media sent before sealing existed.
   */
  sealed_key: string | null;
  mime_type: string;
  size_bytes: number;
  file_name: string;
  created_at: string;
};

export interface MediaRegistry {
  ensureSchema(): Promise<void>;
  announce(record: Omit<MediaRecord, 'sealed_key'>): Promise<void>;
  find(mediaId: string): Promise<MediaRecord | null>;
  /**
   * Records `sealedKey` as the media's sealed copy unless one is recorded already (atomic: of two
   * concurrent seals one wins); returns the key that is recorded now, or null for an unknown media.
   */
  seal(mediaId: string, sealedKey: string): Promise<string | null>;
}

export type Thumbnail = { data: Buffer; mimeType: string; width: number; height: number };

/** `none`: no thumbnail can be made of this media (the reason is shown to clients). */
export type ThumbnailOutcome = { status: 'ready'; thumbnail: Thumbnail } | { status: 'none'; reason: string };

export interface Thumbnailer {
  /**
   * A thumbnail of the media, or `none` with a reason (not decodable, no video tool installed).
   * Throws only on failures worth retrying (reading the source failed).
   */
  make(source: { mimeType: string; body: Readable }): Promise<ThumbnailOutcome>;
}
