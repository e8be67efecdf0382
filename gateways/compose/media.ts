import { createHmac, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ConversationCommands } from '../../commands/conversations.js';
import type { Config } from '../../infra/config/config.js';
import type { DependencyRegistry } from '../../domain/ports/health.js';
import { createSqlMediaRegistry } from '../../infra/media/registry.js';
import { createSharpThumbnailer, probeFfmpeg } from '../../infra/media/thumbnailer.js';
import { createLocalDiskObjectStore, type LocalDiskObjectStore } from '../../infra/object-store/local-disk.js';
import type { ObjectStore } from '../ports/object-store.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createMediaThumbnailQueries } from '../../projections/media/queries.js';
import { createThumbnailWorker, type ThumbnailWorker } from '../media/thumbnail-worker.js';
import type { Projector } from '../../projections/runtime/runtime.js';
import { createMediaService, type MediaService } from '../media/service.js';

/**
 * Media for one process (called by the composition root, process.ts): the object store from the configuration
 * (S3 when S3_BUCKET is set, else local disk under CHAT_DATA_DIR/media with URLs this server
 * signs and serves), the media service for the `api` role, the thumbnail worker for the
 * `projector` role.
 */
export type MediaStack = {
  objects: ObjectStore;
  /** api role */
  service: MediaService | null;
  /** The local-disk store whose signed URLs the api serves; null with S3. */
  localFiles: LocalDiskObjectStore | null;
  /** projector role */
  worker: ThumbnailWorker | null;
  close(): Promise<void>;
};

export type ComposeMediaOptions = {
  config: Config;
  logger: Logger;
  /** The primary database (media registry, thumbnail read model). */
  db: SqlDatabase;
  /** The JWT secret: the local store's URL key is derived from it (HMAC, its own purpose). */
  jwtSecret: string;
  commands: Pick<ConversationCommands, 'access'>;
  /** The running projector of a `projector` process (the worker waits on it); null elsewhere. */
  projector: Pick<Projector, 'waitFor'> | null;
  api: boolean;
  /** The base URL clients reach this server at (read when a local URL is signed). */
  publicUrl: () => string;
  ensureSchema: (what: string, ensure: () => Promise<void>) => Promise<void>;
  /** Where an S3 store registers as a dependency ("object store"). */
  health?: DependencyRegistry;
};

/** The key that signs local media URLs: derived, so a leaked URL key is not a token key. */
export const mediaUrlKey = (jwtSecret: string) => createHmac('sha256', jwtSecret).update('chat-backend media URL signing v1').digest();

async function createObjectStore(o: ComposeMediaOptions): Promise<{ objects: ObjectStore; local: LocalDiskObjectStore | null }> {
  const s3 = o.config.media.s3;
  if (s3 === null) {
    const local = createLocalDiskObjectStore({
      dir: join(o.config.dataDir, 'media'),
      secret: mediaUrlKey(o.jwtSecret),
      publicUrl: o.publicUrl,
      maxBytes: o.config.media.maxBytes,
    });
    return { objects: local, local };
  }
  // Loaded only when configured: the AWS SDK is large.
  const { createS3ObjectStore } = await import('../../infra/object-store/s3.js');
  const store = createS3ObjectStore({
    bucket: s3.bucket,
    region: s3.region,
    ...(s3.endpoint !== null ? { endpoint: s3.endpoint } : {}),
    forcePathStyle: s3.forcePathStyle,
    ...(s3.credentials !== null ? { credentials: { ...s3.credentials } } : {}),
    createBucket: s3.createBucket,
    ...(o.health !== undefined ? { health: o.health } : {}),
  });
  try {
    await store.ensureBucket();
  } catch (error) {
    await store.close();
    throw error;
  }
  return { objects: store, local: null };
}

export async function composeMedia(o: ComposeMediaOptions): Promise<MediaStack> {
  const { objects, local } = await createObjectStore(o);
  const registry = createSqlMediaRegistry(o.db);
  // The service writes the registry; the thumbnail worker reads it (where each sealed copy is).
  if (o.api || o.projector !== null) await o.ensureSchema('media registry', () => registry.ensureSchema());
  let service: MediaService | null = null;
  if (o.api) {
    service = createMediaService({
      settings: o.config.media,
      registry,
      objects,
      thumbnails: createMediaThumbnailQueries(o.db),
      commands: o.commands,
      clock: () => new Date(),
      newId: randomUUID,
      onError: (error, what) => o.logger.warn({ err: error }, `media: ${what} failed`),
    });
  }
  let worker: ThumbnailWorker | null = null;
  if (o.projector !== null) {
    const ffmpeg = await probeFfmpeg();
    worker = createThumbnailWorker({
      db: o.db,
      objects,
      registry,
      thumbnailer: createSharpThumbnailer({ ffmpegPath: ffmpeg }),
      projector: o.projector,
      logger: o.logger,
    });
    worker.start();
    o.logger.info({ store: objects.kind, ffmpeg: ffmpeg !== null }, ffmpeg !== null ? 'thumbnails: images and videos' : 'thumbnails: images (no ffmpeg on PATH: videos get none)');
  }
  return {
    objects,
    service,
    localFiles: o.api ? local : null,
    worker,
    async close() {
      await worker?.stop();
      await objects.close();
    },
  };
}

/**
 * PUBLIC_URL, or http://HOST:<the port the REST API is bound to> (HOST 0.0.0.0 / :: becomes
 * 127.0.0.1: set PUBLIC_URL when other machines download media from this server).
 */
export function publicUrlOf(
  config: Pick<Config, 'publicUrl' | 'host' | 'port'>,
  app: { server: { address(): AddressInfo | string | null } } | null,
): string {
  if (config.publicUrl !== null) return config.publicUrl;
  const address = app?.server.address();
  const port = address !== null && address !== undefined && typeof address === 'object' ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${port}`;
}
