import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidObjectKeyError, type ObjectStore } from '../../gateways/ports/object-store.js';

/**
 * The ObjectStore contract: every adapter runs this suite (s3.int.spec.ts, local-disk.int.spec.ts).
 * Presigned URLs are exercised with fetch, as a client would.
 */
export type ObjectStoreFixture = { store: ObjectStore; close(): Promise<void> };

export const sha256 = (bytes: Buffer | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export function objectStoreContract(name: string, start: () => Promise<ObjectStoreFixture>) {
  describe(`ObjectStore contract: ${name}`, () => {
    let fixture: ObjectStoreFixture;
    const store = () => fixture.store;
    const key = (suffix = '') => `contract/${randomUUID()}${suffix}`;

    beforeAll(async () => {
      fixture = await start();
    });
    afterAll(async () => {
      await fixture?.close();
    });

    it('puts, heads, gets and deletes an object', async () => {
      const k = key('/photo.png');
      const bytes = Buffer.from('not really a png, but bytes \u00e9\u00e8', 'utf8');
      await store().put(k, bytes, { contentType: 'image/png' });
      expect(await store().head(k)).toEqual({ sizeBytes: bytes.length, contentType: 'image/png' });
      const got = await store().get(k);
      expect(got).not.toBeNull();
      expect(got!.contentType).toBe('image/png');
      expect(got!.sizeBytes).toBe(bytes.length);
      expect(sha256(await readAll(got!.body))).toBe(sha256(bytes));
      await store().delete(k);
      expect(await store().head(k)).toBeNull();
      expect(await store().get(k)).toBeNull();
    });

    it('answers null for a missing object, and deleting one is not an error', async () => {
      const k = key();
      expect(await store().head(k)).toBeNull();
      expect(await store().get(k)).toBeNull();
      await expect(store().delete(k)).resolves.toBeUndefined();
    });

    it('replaces an object put again under the same key', async () => {
      const k = key();
      await store().put(k, Buffer.from('first version'), { contentType: 'text/plain' });
      await store().put(k, Buffer.from('v2'), { contentType: 'application/pdf' });
      expect(await store().head(k)).toEqual({ sizeBytes: 2, contentType: 'application/pdf' });
    });

    it('copies an object inside the store; what is written to the source afterwards leaves the copy as it was', async () => {
      const source = key('/upload');
      const target = key('/sealed');
      const original = Buffer.from('the photo that was sent');
      const upload = await store().presignPut(source, { contentType: 'image/png', sizeBytes: original.length, expiresInSeconds: 60 });
      expect((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: original })).status).toBe(200);

      expect(await store().copy(source, target)).toEqual({ sizeBytes: original.length, contentType: 'image/png' });

      // The same upload URL, used again, and a plain put: the source changes, the copy does not.
      const swapped = Buffer.from('a different picture!!!!');
      expect(swapped.length).toBe(original.length);
      const again = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: swapped });
      await again.arrayBuffer();
      expect(sha256(await readAll((await store().get(source))!.body))).toBe(sha256(swapped));
      await store().put(source, Buffer.from('and again'), { contentType: 'text/plain' });
      await store().delete(source);
      expect(await store().head(target)).toEqual({ sizeBytes: original.length, contentType: 'image/png' });
      expect(sha256(await readAll((await store().get(target))!.body))).toBe(sha256(original));
      const download = await fetch((await store().presignGet(target, { expiresInSeconds: 60 })).url);
      expect(sha256(Buffer.from(await download.arrayBuffer()))).toBe(sha256(original));
    });

    it('copies nothing from a missing source, and refuses invalid keys', async () => {
      const target = key();
      expect(await store().copy(key(), target)).toBeNull();
      expect(await store().head(target)).toBeNull();
      await expect(store().copy('../etc/passwd', target)).rejects.toBeInstanceOf(InvalidObjectKeyError);
      await expect(store().copy(key(), 'a//b')).rejects.toBeInstanceOf(InvalidObjectKeyError);
    });

    it('refuses invalid keys before any I/O', async () => {
      for (const bad of ['', '../etc/passwd', 'a//b', 'a/./b', 'space here', '/leading']) {
        await expect(store().head(bad)).rejects.toBeInstanceOf(InvalidObjectKeyError);
        await expect(store().put(bad, Buffer.from('x'), { contentType: 'text/plain' })).rejects.toBeInstanceOf(InvalidObjectKeyError);
        await expect(store().presignPut(bad, { contentType: 'text/plain', sizeBytes: 1, expiresInSeconds: 60 })).rejects.toBeInstanceOf(InvalidObjectKeyError);
      }
    });

    it('a presigned PUT uploads the bytes and a presigned GET returns the same bytes', async () => {
      const k = key('/clip.bin');
      const bytes = Buffer.alloc(300_000);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
      const upload = await store().presignPut(k, { contentType: 'application/octet-stream', sizeBytes: bytes.length, expiresInSeconds: 60 });
      expect(upload.method).toBe('PUT');
      expect(upload.headers['content-type']).toBe('application/octet-stream');
      expect(upload.expiresAt.getTime()).toBeGreaterThan(Date.now() + 30_000);
      const put = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: bytes });
      expect(put.status).toBe(200);
      expect(await store().head(k)).toEqual({ sizeBytes: bytes.length, contentType: 'application/octet-stream' });

      const download = await store().presignGet(k, { expiresInSeconds: 60, fileName: 'clip été.bin' });
      const res = await fetch(download.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(bytes));
    });

    it('a presigned GET with a file name offers the download under that name', async () => {
      const k = key();
      await store().put(k, Buffer.from('%PDF-1.4'), { contentType: 'application/pdf' });
      const download = await store().presignGet(k, { expiresInSeconds: 60, fileName: 'report "Q3".pdf' });
      const res = await fetch(download.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toContain(`filename*=UTF-8''${encodeURIComponent('report "Q3".pdf')}`);
      await res.arrayBuffer();
    });

    it('a presigned GET of a missing object answers 404', async () => {
      const download = await store().presignGet(key(), { expiresInSeconds: 60 });
      const res = await fetch(download.url);
      expect(res.status).toBe(404);
      await res.arrayBuffer();
    });
  });
}
