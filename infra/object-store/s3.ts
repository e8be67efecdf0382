import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { DependencyUnavailableError, unreported, type DependencyRegistry } from '../../domain/ports/health.js';
import { contentDisposition } from './content-disposition.js';
import { assertObjectKey, type ObjectInfo, type ObjectStore } from '../../gateways/ports/object-store.js';

/**
 * The object store on S3 or anything that speaks its API (MinIO, s3rver, R2, ...).
 *
 * - AWS S3: set region and bucket; credentials from the options or the SDK's default chain.
 * - MinIO / s3rver: set `endpoint` and `forcePathStyle: true` (bucket in the path, not the host).
 * Flexible checksums are asked for only when an operation requires them: a presigned PUT would
 * otherwise carry the CRC32 of an empty body, which AWS S3 then enforces against the real upload.
 */
export type S3ObjectStoreOptions = {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Create the bucket at start when it does not exist (MinIO, s3rver, development). */
  createBucket?: boolean;
  /** Where the store registers itself (name "object store", probed with HeadBucket) and reports whether the endpoint answers. */
  health?: DependencyRegistry;
};

export type S3ObjectStore = ObjectStore & {
  /** Checks that the bucket is reachable (and creates it with `createBucket`). */
  ensureBucket(): Promise<void>;
};

const statusOf = (error: unknown) => (error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined);
/** Socket errors of Node.js that mean the endpoint cannot be reached. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/**
 * True when the endpoint could not be reached or answered that it cannot serve now (5xx:
 * InternalError, SlowDown, ServiceUnavailable), as opposed to refusing this request (4xx).
 */
export function isUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = statusOf(error);
  if (status !== undefined) return status >= 500;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  return error.name === 'TimeoutError' || error.name === 'RequestTimeout' || /socket hang up|ECONNREFUSED|ECONNRESET/.test(error.message);
}
const isNotFound = (error: unknown) => statusOf(error) === 404 || (error instanceof S3ServiceException && (error.name === 'NotFound' || error.name === 'NoSuchKey'));

export function createS3ObjectStore(options: S3ObjectStoreOptions) {
  const client = new S3Client({
    region: options.region,
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? false,
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // No call waits without bound for an endpoint that does not answer (the socket's idle time).
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  });
  const Bucket = options.bucket;
  const health = options.health?.register('object store', async () => {
    await client.send(new HeadBucketCommand({ Bucket }));
  }) ?? unreported;
  /** Sends a command: an unreachable endpoint becomes DependencyUnavailableError (reported once per outage). */
  async function send<T>(call: () => Promise<T>): Promise<T> {
    try {
      const out = await call();
      health.up();
      return out;
    } catch (error) {
      if (!isUnreachable(error)) {
        health.up(); // it answered: a refusal of this request, not an outage
        throw error;
      }
      health.down(error);
      throw new DependencyUnavailableError('object store', { cause: error });
    }
  }

  async function head(key: string): Promise<ObjectInfo | null> {
    assertObjectKey(key);
    try {
      const out = await send(() => client.send(new HeadObjectCommand({ Bucket, Key: key })));
      return { sizeBytes: Number(out.ContentLength ?? 0), contentType: out.ContentType ?? null };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  const store = {
    kind: 's3',

    async ensureBucket() {
      try {
        await client.send(new HeadBucketCommand({ Bucket }));
      } catch (error) {
        if (!isNotFound(error) || options.createBucket !== true) {
          throw new Error(`S3 bucket ${Bucket} is not reachable${isNotFound(error) ? ' (it does not exist; create it, or set S3_CREATE_BUCKET=true)' : ''}`, {
            cause: error,
          });
        }
        await client.send(new CreateBucketCommand({ Bucket }));
      }
    },

    async presignPut(key, { contentType, sizeBytes, expiresInSeconds }) {
      assertObjectKey(key);
      const command = new PutObjectCommand({ Bucket, Key: key, ContentType: contentType, ContentLength: sizeBytes });
      // Content-Type and Content-Length are signed: S3 refuses an upload of another type or size.
      const url = await getSignedUrl(client, command, { expiresIn: expiresInSeconds, signableHeaders: new Set(['content-type', 'content-length']) });
      return { url, method: 'PUT', headers: { 'content-type': contentType }, expiresAt: new Date(Date.now() + expiresInSeconds * 1000) };
    },

    async presignGet(key, { expiresInSeconds, fileName }) {
      assertObjectKey(key);
      const command = new GetObjectCommand({
        Bucket,
        Key: key,
        ...(fileName !== undefined ? { ResponseContentDisposition: contentDisposition(fileName) } : {}),
      });
      const url = await getSignedUrl(client, command, { expiresIn: expiresInSeconds });
      return { url, expiresAt: new Date(Date.now() + expiresInSeconds * 1000) };
    },

    head,

    async get(key) {
      assertObjectKey(key);
      try {
        const out = await send(() => client.send(new GetObjectCommand({ Bucket, Key: key })));
        if (!(out.Body instanceof Readable)) throw new Error(`S3 GetObject ${key}: expected a Node.js stream body`);
        return { body: out.Body, sizeBytes: Number(out.ContentLength ?? 0), contentType: out.ContentType ?? null };
      } catch (error) {
        if (isNotFound(error)) return null;
        throw error;
      }
    },

    async put(key, body, { contentType }) {
      assertObjectKey(key);
      await send(() => client.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.length })));
    },

    async copy(sourceKey, targetKey) {
      assertObjectKey(sourceKey);
      assertObjectKey(targetKey);
      try {
        // Server-side (CopyObject): S3 copies the bytes, up to 5 GB, in one atomic operation.
        const source = `${Bucket}/${sourceKey.split('/').map(encodeURIComponent).join('/')}`;
        await send(() => client.send(new CopyObjectCommand({ Bucket, Key: targetKey, CopySource: source, MetadataDirective: 'COPY' })));
      } catch (error) {
        if (isNotFound(error)) return null;
        throw error;
      }
      return head(targetKey);
    },

    async delete(key) {
      assertObjectKey(key);
      await send(() => client.send(new DeleteObjectCommand({ Bucket, Key: key })));
    },

    async close() {
      client.destroy();
    },
  } satisfies S3ObjectStore;
  return store as S3ObjectStore;
}
