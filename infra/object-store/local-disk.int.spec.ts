import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectStoreContract, readAll, sha256 } from './contract.js';
import { startLocalDisk } from './testing/servers.js';

/** The local-disk adapter, its signed URLs served over HTTP. */
objectStoreContract('local disk', async () => {
  const local = await startLocalDisk();
  return { store: local.store, close: () => local.close() };
});


describe('local disk: signed URLs refuse what they did not sign', () => {
  let local: Awaited<ReturnType<typeof startLocalDisk>>;
  let clock = Date.now();
  beforeAll(async () => {
    local = await startLocalDisk({ maxBytes: 1_000_000, now: () => clock });
  });
  afterAll(async () => {
    await local?.close();
  });

  const body = Buffer.from('0123456789');
  const presign = (key: string, sizeBytes = body.length) => local.store.presignPut(key, { contentType: 'image/png', sizeBytes, expiresInSeconds: 60 });
  const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

  it('stores exactly the announced upload, readable through a signed GET', async () => {
    const up = await presign('t/ok');
    expect((await fetch(up.url, { method: 'PUT', headers: up.headers, body })).status).toBe(200);
    const down = await local.store.presignGet('t/ok', { expiresInSeconds: 60 });
    const res = await fetch(down.url);
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(body));
    const got = await local.store.get('t/ok');
    expect(sha256(await readAll(got!.body))).toBe(sha256(body));
  });

  it('refuses a tampered signature, key, size or Content-Type with 403', async () => {
    const up = await presign('t/tamper');
    const tampered = [
      up.url.replace(/X-Signature=[^&]+/, 'X-Signature=AAAA'),
      up.url.replace('/t/tamper?', '/t/other?'),
      up.url.replace('X-Size=10', 'X-Size=11'),
    ];
    for (const url of tampered) {
      const res = await fetch(url, { method: 'PUT', headers: up.headers, body });
      expect(res.status).toBe(403);
      expect((await errorOf(res)).code).toBe('signature_invalid');
    }
    const wrongType = await fetch(up.url, { method: 'PUT', headers: { 'content-type': 'text/html' }, body });
    expect(wrongType.status).toBe(403);
    expect((await errorOf(wrongType)).message).toMatch(/Content-Type/);
    expect(await local.store.head('t/tamper')).toBeNull();
  });

  it('refuses an expired URL with 403 url_expired', async () => {
    const up = await presign('t/expired');
    const down = await local.store.presignGet('t/ok', { expiresInSeconds: 60 });
    clock += 61_000;
    try {
      const put = await fetch(up.url, { method: 'PUT', headers: up.headers, body });
      expect(put.status).toBe(403);
      expect((await errorOf(put)).code).toBe('url_expired');
      const get = await fetch(down.url);
      expect(get.status).toBe(403);
      expect((await errorOf(get)).code).toBe('url_expired');
    } finally {
      clock -= 61_000;
    }
  });

  it('refuses a body of another size than announced (400) and keeps nothing of it', async () => {
    const up = await presign('t/size');
    const res = await fetch(up.url, { method: 'PUT', headers: up.headers, body: Buffer.from('0123') });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('upload_size_mismatch');
    expect(await local.store.head('t/size')).toBeNull();
  });

  it('keeps nothing of an upload cut off half way', async () => {
    const up = await presign('t/cut', 1000);
    const url = new URL(up.url);
    await new Promise<void>((resolve) => {
      const req = request(url, { method: 'PUT', headers: { ...up.headers, 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(400));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    // the server notices the reset; poll (bounded) until the temporary file is gone
    for (let i = 0; i < 50 && (await readdir(join(local.dir, 'tmp'))).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await readdir(join(local.dir, 'tmp'))).toEqual([]);
    expect(await local.store.head('t/cut')).toBeNull();
  });

  it('cannot presign more than its limit', async () => {
    await expect(presign('t/huge', 1_000_001)).rejects.toThrow(/sizeBytes/);
  });
});
