import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * Media while the object store (S3: s3rver on loopback) cannot be reached: the routes that need it
 * answer 503 service_unavailable with Retry-After instead of 500, readiness names the object
 * store, nothing crashes, and the same request works once the store is back.
 */
describe('media while the object store is down', () => {
  let directory: string;
  let s3: S3rver;
  let port: number;
  let stack: ApiStack;
  let alice: Registered;
  let conversationId: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 's3rver-down-'));
    s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
    ({ port } = await s3.run());
    stack = await createApiStack('pglite', {
      env: {
        S3_BUCKET: `media-down-${randomUUID().slice(0, 8)}`,
        S3_ENDPOINT: `http://127.0.0.1:${port}`,
        S3_ACCESS_KEY_ID: 'S3RVER',
        S3_SECRET_ACCESS_KEY: 'S3RVER',
        S3_FORCE_PATH_STYLE: 'true',
        S3_CREATE_BUCKET: 'true',
      },
    });
    alice = await stack.client.register('md_alice');
    const bob = await stack.client.register('md_bob');
    conversationId = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
    await s3?.close().catch(() => {});
    await rm(directory, { recursive: true, force: true });
  }, 60_000);

  it('answers 503 with a code while the store is unreachable, and works again once it is back', async () => {
    const bytes = Buffer.from('%PDF-1.4 not really a pdf, but the bytes announced');
    const announced = await stack.client.as(alice).post('/api/v1/media', { content_type: 'application/pdf', size_bytes: bytes.length, file_name: 'a.pdf', conversation_id: conversationId });
    expect(announced.status).toBe(201);
    const put = await fetch(announced.body.upload_url, { method: announced.body.upload_method, headers: announced.body.upload_headers, body: bytes });
    expect(put.status).toBe(200);
    const send = () => stack.client.as(alice).post(`/api/v1/conversations/${conversationId}/messages`, { content: 'the file', content_type: 'file', media_id: announced.body.media_id, client_message_id: 'file-1' });

    await s3.close();

    const refused = await send();
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'service_unavailable' } });
    expect(refused.body.error.message).toContain('object store');
    expect(refused.headers['retry-after']).toBe('1');
    const unready = await stack.client.anonymous.get('/readyz');
    expect(unready.status).toBe(503);
    expect(unready.body.dependencies).toEqual([expect.objectContaining({ name: 'object store', status: 'down' })]);

    s3 = new S3rver({ address: '127.0.0.1', port, silent: true, directory });
    await s3.run();

    const sent = await send();
    expect(sent.status).toBe(201);
    expect(sent.body).toMatchObject({ media: { media_id: announced.body.media_id } });
    const ready = await stack.client.anonymous.get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', dependencies: [expect.objectContaining({ name: 'object store', status: 'up' })] });
  });
});
