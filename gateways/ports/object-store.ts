import type { Readable } from 'node:stream';

/**
 * The object store port: blobs (media uploads, thumbnails) by key, and presigned URLs that let a
 * client upload or download one object directly, without the API in the data path.
 *
 * Guarantees every adapter gives (the contract suite in contract.ts checks them):
 * - Keys are 1..512 characters of `A-Z a-z 0-9 / _ . -`, without empty, `.` or `..` segments;
 *   anything else throws InvalidObjectKeyError before any I/O.
 * - An object appears whole or not at all: `head` / `get` never see a partial upload.
 * - `presignPut` returns a URL, the method (PUT) and the exact headers the client must send; the
 *   upload stores the body with that Content-Type. Whether the store itself refuses a body whose
 *   size or type differs from the announcement depends on the store (local disk and AWS S3 do;
 *   s3rver does not): callers verify with `head` before they trust an upload.
 * - Presigned URLs stop working after `expiresAt` (the store's clock).
 * - `delete` of a missing key is not an error.
 * - `copy` makes the target an object of its own, inside the store (no bytes through the
 *   server): the source's bytes and content type as they were at that moment. Whatever is written
 *   to the source afterwards (a put, a presigned upload) leaves the target as it is. This is how
 *   uploads are sealed once a message names them (gateways/media/service.ts).
 */

export type PresignedUpload = {
  url: string;
  method: 'PUT';
  /** Headers the client must send with the upload, exactly (they are part of the signature). */
  headers: Record<string, string>;
  expiresAt: Date;
};

export type PresignedDownload = { url: string; expiresAt: Date };

export type ObjectInfo = { sizeBytes: number; contentType: string | null };

export type StoredObject = ObjectInfo & { body: Readable };

export interface ObjectStore {
  /** Which adapter this is ('s3', 'local-disk'), for logs. */
  readonly kind: string;
  presignPut(key: string, options: { contentType: string; sizeBytes: number; expiresInSeconds: number }): Promise<PresignedUpload>;
  /** `fileName`: the download is offered under that name (Content-Disposition). */
  presignGet(key: string, options: { expiresInSeconds: number; fileName?: string }): Promise<PresignedDownload>;
  /** Size and content type of a stored object; null when there is none. */
  head(key: string): Promise<ObjectInfo | null>;
  /** The object's bytes as a stream; null when there is none. */
  get(key: string): Promise<StoredObject | null>;
  put(key: string, body: Buffer, options: { contentType: string }): Promise<void>;
  /** Copies `sourceKey` to `targetKey` inside the store; what the target holds then, or null when there is no source. */
  copy(sourceKey: string, targetKey: string): Promise<ObjectInfo | null>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

export class InvalidObjectKeyError extends Error {
  override readonly name = 'InvalidObjectKeyError';
  constructor(readonly key: string) {
    super(`invalid object key ${JSON.stringify(key.slice(0, 80))}: expected 1..512 characters of A-Z a-z 0-9 / _ . - without empty, "." or ".." segments`);
  }
}

const KEY = /^[A-Za-z0-9/_.-]{1,512}$/;

/** Throws InvalidObjectKeyError unless `key` is a valid object key (see the port's guarantees). */
export function assertObjectKey(key: string): void {
  if (!KEY.test(key) || key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new InvalidObjectKeyError(key);
  }
}
