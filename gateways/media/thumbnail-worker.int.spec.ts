import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqlMediaRegistry } from '../../infra/media/registry.js';
import { createSharpThumbnailer } from '../../infra/media/thumbnailer.js';
import type { Thumbnailer } from '../ports/media.js';
import type { ObjectStore } from '../ports/object-store.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { createS3ObjectStore } from '../../infra/object-store/s3.js';
import { startLocalDisk } from '../../infra/object-store/testing/servers.js';
import { createPgliteDatabase } from '../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { mediaObjectKey, sealedMediaKey, thumbnailKey } from '../../projections/media/keys.js';
import { MEDIA_THUMBNAILS_SCHEMA } from '../../projections/media/projection.js';
import { createThumbnailWorker } from './thumbnail-worker.js';

/** The thumbnail worker on PGlite and the local-disk store: restart safety and retries. */
describe('thumbnail worker', () => {
  let db: SqlDatabase;
  let local: Awaited<ReturnType<typeof startLocalDisk>>;
  const thumbnailer = createSharpThumbnailer({ ffmpegPath: null });
  const projector = { waitFor: async () => true };
  let registry: ReturnType<typeof createSqlMediaRegistry>;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await db.exec(MEDIA_THUMBNAILS_SCHEMA);
    registry = createSqlMediaRegistry(db);
    await registry.ensureSchema();
    local = await startLocalDisk();
  });
  afterAll(async () => {
    await local?.close();
    await db?.close();
  });

  async function queue(): Promise<{ mediaId: string; conversationId: string }> {
    const mediaId = randomUUID();
    const conversationId = randomUUID();
    const png = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer();
    await local.store.put(mediaObjectKey(conversationId, mediaId), png, { contentType: 'image/png' });
    await db.query(
      `INSERT INTO media_thumbnails (media_id, conversation_id, message_id, content_type, source_mime, status) VALUES ($1, $2, $3, 'image', 'image/png', 'pending')`,
      [mediaId, conversationId, randomUUID()],
    );
    return { mediaId, conversationId };
  }

  const row = async (mediaId: string) =>
    (await db.query<{ status: string; attempts: number; reason: string | null; width: number | null }>('SELECT status, attempts, reason, width FROM media_thumbnails WHERE media_id = $1', [mediaId])).rows[0]!;

  it('a job whose worker died mid-way is taken again once its lease runs out, and finished once', async () => {
    const { mediaId } = await queue();
    // worker A takes the job and never finishes it (as if its process was killed)
    const stuck: Thumbnailer = { make: () => new Promise(() => {}) };
    const a = createThumbnailWorker({ db, registry, objects: local.store, thumbnailer: stuck, projector, leaseMs: 200 });
    void a.runDue();
    for (let i = 0; i < 100 && (await row(mediaId)).attempts === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await row(mediaId)).toMatchObject({ status: 'pending', attempts: 1 });

    const b = createThumbnailWorker({ db, registry, objects: local.store, thumbnailer, projector, leaseMs: 200 });
    expect(await b.runDue()).toBe(0); // leased to A: not taken twice
    for (let i = 0; i < 100 && (await b.runDue()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await row(mediaId)).toMatchObject({ status: 'ready', attempts: 2, width: 320 });
    expect(await local.store.head(thumbnailKey(mediaId))).toMatchObject({ contentType: 'image/webp' });
  });

  it('retries a failing object store with backoff, then gives none after maxAttempts', async () => {
    const { mediaId } = await queue();
    const broken: ObjectStore = { ...local.store, get: async () => Promise.reject(new Error('store down')) };
    const worker = createThumbnailWorker({ db, registry, objects: broken, thumbnailer, projector, maxAttempts: 2 });
    await worker.runDue();
    expect(await row(mediaId)).toMatchObject({ status: 'pending', attempts: 1 });
    // make the retry due now instead of waiting for the backoff
    for (let attempt = 0; attempt < 3; attempt++) {
      await db.query(`UPDATE media_thumbnails SET next_attempt_at = now() WHERE media_id = $1`, [mediaId]);
      await worker.runDue();
    }
    expect(await row(mediaId)).toMatchObject({ status: 'none', reason: 'no thumbnail after 2 attempts' });
  });

  it('a media whose upload vanished gets none, not a crash', async () => {
    const { mediaId, conversationId } = await queue();
    await local.store.delete(mediaObjectKey(conversationId, mediaId));
    await createThumbnailWorker({ db, registry, objects: local.store, thumbnailer, projector }).runDue();
    expect(await row(mediaId)).toMatchObject({ status: 'none', reason: 'the upload is missing from the object store' });
  });
  it('makes the thumbnail of the sealed copy a message names, not of what the upload URL holds now', async () => {
    const { mediaId, conversationId } = await queue(); // the upload key holds a 640 x 480 picture
    const sealed = sealedMediaKey(conversationId, mediaId, randomUUID());
    const sent = await sharp({ create: { width: 400, height: 100, channels: 3, background: { r: 9, g: 9, b: 9 } } }).png().toBuffer();
    await local.store.put(sealed, sent, { contentType: 'image/png' });
    await registry.announce({
      media_id: mediaId,
      conversation_id: conversationId,
      uploader_id: randomUUID(),
      object_key: mediaObjectKey(conversationId, mediaId),
      mime_type: 'image/png',
      size_bytes: sent.length,
      file_name: 'sent.png',
      created_at: new Date().toISOString(),
    });
    expect(await registry.seal(mediaId, sealed)).toBe(sealed);
    expect(await registry.seal(mediaId, 'sealed/another/copy')).toBe(sealed); // the first seal stays
    await createThumbnailWorker({ db, registry, objects: local.store, thumbnailer, projector }).runDue();
    const thumbnail = await sharp(Buffer.concat(await readAllChunks(mediaId))).metadata();
    expect({ width: thumbnail.width, height: thumbnail.height }).toEqual({ width: 320, height: 80 });
  });

  async function readAllChunks(mediaId: string): Promise<Buffer[]> {
    const chunks: Buffer[] = [];
    for await (const chunk of (await local.store.get(thumbnailKey(mediaId)))!.body) chunks.push(Buffer.from(chunk as Buffer));
    return chunks;
  }

  it('an object store that cannot be reached costs no attempt: the worker backs off, and makes the thumbnail once the store is back', async () => {
    const directory = await mkdtemp(join(tmpdir(), 's3rver-outage-'));
    let s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
    const { port } = await s3.run();
    const objects = createS3ObjectStore({
      bucket: 'thumbs',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      createBucket: true,
    });
    try {
      await objects.ensureBucket();
      const mediaId = randomUUID();
      const conversationId = randomUUID();
      const png = await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 9, g: 9, b: 9 } } }).png().toBuffer();
      await objects.put(mediaObjectKey(conversationId, mediaId), png, { contentType: 'image/png' });
      await db.query(
        `INSERT INTO media_thumbnails (media_id, conversation_id, message_id, content_type, source_mime, status) VALUES ($1, $2, $3, 'image', 'image/png', 'pending')`,
        [mediaId, conversationId, randomUUID()],
      );
      await s3.close(); // the endpoint is gone: connections are refused

      let tries = 0;
      const counted = { ...objects, get: (key: string) => { tries++; return objects.get(key); } };
      const options = { db, registry, objects: counted, thumbnailer, projector, maxAttempts: 2, pollIntervalMs: 20, outageBackoff: { initialMs: 20, maxMs: 50 } };
      const during = createThumbnailWorker(options);
      during.start();
      // More tries than maxAttempts while the store is down: none counts against the media.
      for (let i = 0; i < 500 && tries <= 4; i++) await new Promise((r) => setTimeout(r, 20));
      await during.stop();
      expect(tries).toBeGreaterThan(2);
      expect(await row(mediaId)).toMatchObject({ status: 'pending', attempts: 0 });

      s3 = new S3rver({ address: '127.0.0.1', port, silent: true, directory });
      await s3.run();
      const worker = createThumbnailWorker(options);
      worker.start();
      for (let i = 0; i < 500 && (await row(mediaId)).status === 'pending'; i++) await new Promise((r) => setTimeout(r, 20));
      await worker.stop();
      expect(await row(mediaId)).toMatchObject({ status: 'ready', attempts: 1, width: 320 });
      expect(await objects.head(thumbnailKey(mediaId))).toMatchObject({ contentType: 'image/webp' });
    } finally {
      await objects.close();
      await s3.close().catch(() => {});
      await rm(directory, { recursive: true, force: true });
    }
  });
});
