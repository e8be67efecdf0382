import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { assertObjectKey, type ObjectInfo, type ObjectStore } from '../../gateways/ports/object-store.js';

/**
 * The object store on local disk: the embedded default (files under CHAT_DATA_DIR/media).
 *
 * Presigned URLs point at the server itself (`<publicUrl><routePrefix>/<key>?...`) and carry an
 * HMAC-SHA256 over method, key, expiry (and for uploads the exact Content-Type and size; for
 * downloads the file name) with a server secret: the signature is the authorisation, so the
 * routes that serve them (gateways/api/routes/media-files.ts) sit outside the bearer-token scope.
 * `receive` streams an upload to a temporary file and renames it into place only when exactly the
 * signed number of bytes arrived; `open` streams a stored object back.
 *
 * Layout: `<dir>/objects/<key>` (bytes), `<dir>/meta/<key>.json` (content type, size; written
 * last, so an object without its metadata file does not exist), `<dir>/tmp/` (uploads in flight).
 * Files are only ever replaced by renaming a temporary file over them, never written in place:
 * `copy` relies on it (a hard link keeps the bytes it linked).
 */
export type LocalDiskObjectStoreOptions = {
  dir: string;
  /** Signs the URLs; at least 32 bytes. */
  secret: string | Buffer;
  /** The server's base URL as clients reach it (no trailing slash), read when a URL is signed. */
  publicUrl: () => string;
  /** Path the server serves signed URLs under. */
  routePrefix?: string;
  /** Largest object accepted through a presigned upload. */
  maxBytes: number;
  /** Milliseconds since the epoch (tests move time). */
  now?: () => number;
};

/** Why a signed request was refused: `status` and `code` go to the HTTP client as they are. */
export class SignedUrlError extends Error {
  override readonly name = 'SignedUrlError';
  constructor(
    readonly status: 400 | 403 | 404 | 411 | 413,
    readonly code: 'signature_invalid' | 'url_expired' | 'length_required' | 'upload_size_mismatch' | 'media_too_large' | 'object_not_found',
    message: string,
  ) {
    super(message);
  }
}

const Meta = z.object({ content_type: z.string().nullable(), size_bytes: z.number().int().nonnegative() });

/** The query of a signed URL (strings as the HTTP layer parsed them). */
export type SignedQuery = Record<string, string | string[] | undefined>;

export type LocalDiskObjectStore = ObjectStore & {
  readonly routePrefix: string;
  /** Stores the body of a signed PUT; throws SignedUrlError when the request does not match its URL. */
  receive(request: { key: string; query: SignedQuery; contentType: string | undefined; contentLength: string | undefined; body: Readable }): Promise<void>;
  /** The object a signed GET names, to stream back; throws SignedUrlError. */
  open(request: { key: string; query: SignedQuery }): Promise<{ body: Readable; sizeBytes: number; contentType: string | null; fileName: string | null }>;
};

const one = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

export function createLocalDiskObjectStore(options: LocalDiskObjectStoreOptions): LocalDiskObjectStore {
  const secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : options.secret;
  if (secret.length < 32) throw new RangeError('local disk object store: the URL signing secret must be at least 32 bytes');
  const routePrefix = options.routePrefix ?? '/media-files';
  const now = options.now ?? Date.now;
  const objectPath = (key: string) => join(options.dir, 'objects', key);
  const metaPath = (key: string) => join(options.dir, 'meta', `${key}.json`);

  const sign = (parts: (string | number)[]) => createHmac('sha256', secret).update(parts.join('\n')).digest('base64url');

  function verify(expected: string, given: string | undefined): boolean {
    if (given === undefined) return false;
    const a = Buffer.from(expected);
    const b = Buffer.from(given);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  function url(key: string, params: Record<string, string>): string {
    const path = key.split('/').map(encodeURIComponent).join('/');
    return `${options.publicUrl()}${routePrefix}/${path}?${new URLSearchParams(params).toString()}`;
  }

  function checkExpiry(query: SignedQuery): number {
    const raw = one(query['X-Expires']);
    const expires = raw !== undefined && /^\d{1,12}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(expires)) throw new SignedUrlError(403, 'signature_invalid', 'X-Expires: missing or not a Unix time; use the URL exactly as it was given');
    if (expires * 1000 <= now()) throw new SignedUrlError(403, 'url_expired', 'the URL has expired; ask for a new one');
    return expires;
  }

  async function readMeta(key: string): Promise<ObjectInfo | null> {
    let text: string;
    try {
      text = await readFile(metaPath(key), 'utf8');
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return null;
      throw error;
    }
    const meta = Meta.parse(JSON.parse(text));
    return { sizeBytes: meta.size_bytes, contentType: meta.content_type };
  }

  async function writeAtomically(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const tmp = join(options.dir, 'tmp', randomUUID());
    await mkdir(dirname(tmp), { recursive: true });
    try {
      await write(tmp);
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  async function storeMeta(key: string, info: ObjectInfo) {
    await writeAtomically(metaPath(key), (tmp) => writeFile(tmp, JSON.stringify({ content_type: info.contentType, size_bytes: info.sizeBytes })));
  }

  async function open(key: string) {
    const meta = await readMeta(key);
    if (meta === null) return null;
    const body = createReadStream(objectPath(key));
    // Surface a missing data file (deleted between the two reads) as "no object".
    const opened = await new Promise<boolean>((resolve) => {
      body.once('open', () => resolve(true));
      body.once('error', () => resolve(false));
    });
    if (!opened) return null;
    return { ...meta, body };
  }

  return {
    kind: 'local-disk',
    routePrefix,

    async presignPut(key, { contentType, sizeBytes, expiresInSeconds }) {
      assertObjectKey(key);
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > options.maxBytes) {
        throw new RangeError(`sizeBytes: expected 0..${options.maxBytes}, got ${sizeBytes}`);
      }
      const expires = Math.floor(now() / 1000) + expiresInSeconds;
      const signature = sign(['PUT', key, expires, contentType, sizeBytes]);
      return {
        url: url(key, { 'X-Expires': String(expires), 'X-Size': String(sizeBytes), 'X-Signature': signature }),
        method: 'PUT',
        headers: { 'content-type': contentType },
        expiresAt: new Date(expires * 1000),
      };
    },

    async presignGet(key, { expiresInSeconds, fileName }) {
      assertObjectKey(key);
      const expires = Math.floor(now() / 1000) + expiresInSeconds;
      const params: Record<string, string> = { 'X-Expires': String(expires) };
      if (fileName !== undefined) params['X-Filename'] = fileName;
      params['X-Signature'] = sign(['GET', key, expires, fileName ?? '']);
      return { url: url(key, params), expiresAt: new Date(expires * 1000) };
    },

    async head(key) {
      assertObjectKey(key);
      return readMeta(key);
    },

    async get(key) {
      assertObjectKey(key);
      return open(key);
    },

    async put(key, body, { contentType }) {
      assertObjectKey(key);
      await writeAtomically(objectPath(key), (tmp) => writeFile(tmp, body));
      await storeMeta(key, { sizeBytes: body.length, contentType });
    },

    async copy(sourceKey, targetKey) {
      assertObjectKey(sourceKey);
      assertObjectKey(targetKey);
      const meta = await readMeta(sourceKey);
      if (meta === null) return null;
      let missing = false;
      // A hard link: no bytes copied. Safe because this store never writes a file in place (every
      // write goes to a temporary file renamed over the name), so a later upload to the source
      // gives the source a new file and leaves the linked one as it was.
      await writeAtomically(objectPath(targetKey), async (tmp) => {
        try {
          await link(objectPath(sourceKey), tmp);
        } catch (error) {
          const code = error instanceof Error && 'code' in error ? error.code : undefined;
          if (code === 'ENOENT') {
            missing = true;
            throw error;
          }
          await copyFile(objectPath(sourceKey), tmp); // a file system without hard links
        }
      }).catch((error: unknown) => {
        if (!missing) throw error;
      });
      if (missing) return null;
      // The size of what was linked (the source may have been replaced since its metadata was read).
      const info = { sizeBytes: (await stat(objectPath(targetKey))).size, contentType: meta.contentType };
      await storeMeta(targetKey, info);
      return info;
    },

    async delete(key) {
      assertObjectKey(key);
      await rm(metaPath(key), { force: true });
      await rm(objectPath(key), { force: true });
    },

    async close() {},

    async receive({ key, query, contentType, contentLength, body }) {
      try {
        assertObjectKey(key);
      } catch {
        throw new SignedUrlError(403, 'signature_invalid', 'the URL is not valid; use it exactly as it was given');
      }
      const expires = checkExpiry(query);
      const sizeRaw = one(query['X-Size']);
      const size = sizeRaw !== undefined && /^\d{1,15}$/.test(sizeRaw) ? Number(sizeRaw) : Number.NaN;
      // The signature covers the Content-Type the client must send: a different one fails it.
      if (!Number.isSafeInteger(size) || !verify(sign(['PUT', key, expires, contentType ?? '', size]), one(query['X-Signature']))) {
        throw new SignedUrlError(
          403,
          'signature_invalid',
          'the signature does not match: use the URL exactly as it was given, with the Content-Type header announced for this upload',
        );
      }
      if (size > options.maxBytes) throw new SignedUrlError(413, 'media_too_large', `the upload is over the limit of ${options.maxBytes} bytes`);
      if (contentLength === undefined) {
        throw new SignedUrlError(411, 'length_required', `Content-Length: required; send exactly ${size} bytes`);
      }
      if (!/^\d{1,15}$/.test(contentLength) || Number(contentLength) !== size) {
        throw new SignedUrlError(400, 'upload_size_mismatch', `Content-Length: ${contentLength} bytes, but this upload was announced as ${size} bytes`);
      }
      let received = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          received += chunk.length;
          if (received > size) callback(new SignedUrlError(400, 'upload_size_mismatch', `body: more than the ${size} bytes announced`));
          else callback(null, chunk);
        },
      });
      await writeAtomically(objectPath(key), async (tmp) => {
        await pipeline(body, counter, createWriteStream(tmp));
        if (received !== size) throw new SignedUrlError(400, 'upload_size_mismatch', `body: ${received} bytes received, ${size} announced`);
      });
      await storeMeta(key, { sizeBytes: size, contentType: contentType ?? null });
    },

    async open({ key, query }) {
      try {
        assertObjectKey(key);
      } catch {
        throw new SignedUrlError(403, 'signature_invalid', 'the URL is not valid; use it exactly as it was given');
      }
      const expires = checkExpiry(query);
      const fileName = one(query['X-Filename']) ?? null;
      if (!verify(sign(['GET', key, expires, fileName ?? '']), one(query['X-Signature']))) {
        throw new SignedUrlError(403, 'signature_invalid', 'the signature does not match; use the URL exactly as it was given');
      }
      const object = await open(key);
      if (object === null) throw new SignedUrlError(404, 'object_not_found', 'no such object');
      return { ...object, fileName };
    },
  } satisfies LocalDiskObjectStore;
}
