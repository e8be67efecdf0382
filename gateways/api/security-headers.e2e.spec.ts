import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiResponse, type ApiStack, type Registered } from './testing/api-stack.js';

/**
 * Every reply of the REST API carries the security headers of a JSON API (successes, client
 * errors, 404s, rate-limit refusals); the local-disk media files, which are user bytes, carry
 * their own: never sniffed, never run, saved as attachments.
 */
describe('security headers', () => {
  let stack: ApiStack;
  let dir: string;
  let alice: Registered;
  let bob: Registered;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'headers-e2e-'));
    stack = await createApiStack('pglite', { env: { CHAT_DATA_DIR: dir, RATE_LIMIT_MAX: '40' } });
    await stack.listenAll();
    alice = await stack.client.register('hdr_a');
    bob = await stack.client.register('hdr_b');
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function expectJsonApiHeaders(res: ApiResponse, what: string) {
    const h = res.headers;
    expect({ what, nosniff: h['x-content-type-options'], cache: h['cache-control'], frame: h['x-frame-options'], referrer: h['referrer-policy'] }).toEqual({
      what,
      nosniff: 'nosniff',
      cache: 'no-store',
      frame: 'DENY',
      referrer: 'no-referrer',
    });
    expect(String(h['content-security-policy'])).toMatch(/default-src 'none'/);
    expect(String(h['content-security-policy'])).toMatch(/frame-ancestors 'none'/);
  }

  it('are on every JSON reply: 200, 201, 400, 401, 403, 404 and unknown routes', async () => {
    const as = stack.client.as(alice);
    const opened = await as.post('/api/v1/conversations', { participant_id: bob.user_id });
    const replies: [string, ApiResponse][] = [
      ['health', await stack.client.anonymous.get('/healthz')],
      ['created', opened],
      ['inbox', await as.get('/api/v1/conversations')],
      ['validation', await as.post(`/api/v1/conversations/${opened.body.conversation_id}/messages`, { content: 'a\u0000b' })],
      ['no token', await stack.client.anonymous.get('/api/v1/conversations')],
      ['forbidden', await as.put(`/api/v1/users/${bob.user_id}/presence`, { status: 'away' })],
      ['not found', await as.get('/api/v1/media/00000000-0000-4000-8000-000000000000')],
      ['no route', await as.get('/api/v1/nothing-here')],
      ['undecodable path', await as.get('/api/v1/conversations/%ED%A0%80/messages')],
      ['login refused', await stack.client.anonymous.post('/api/v1/auth/login', { username: alice.username, password: 'wrong password' })],
    ];
    expect(replies.map(([what, r]) => [what, r.status])).toEqual([
      ['health', 200],
      ['created', 201],
      ['inbox', 200],
      ['validation', 400],
      ['no token', 401],
      ['forbidden', 403],
      ['not found', 404],
      ['no route', 404],
      ['undecodable path', 400],
      ['login refused', 401],
    ]);
    for (const [what, res] of replies) expectJsonApiHeaders(res, what);
  });

  it('media files (user bytes) are never sniffed or run, are saved as attachments, and cached by the client only', async () => {
    const as = stack.client.as(alice);
    const conversationId = (await as.post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    const bytes = Buffer.from('<html><script>alert(1)</script></html>');
    const announced = await as.post('/api/v1/media', { content_type: 'text/plain', size_bytes: bytes.length, file_name: 'notes.txt', conversation_id: conversationId });
    expect(announced.status).toBe(201);
    const put = await fetch(announced.body.upload_url, { method: 'PUT', headers: announced.body.upload_headers, body: bytes });
    expect(put.status).toBe(200);
    expect(put.headers.get('x-content-type-options')).toBe('nosniff');

    const link = await stack.client.as(bob).get(`/api/v1/media/${announced.body.media_id}`);
    expect(link.status).toBe(200);
    expectJsonApiHeaders(link, 'download link');
    const file = await fetch(link.body.url);
    expect(file.status).toBe(200);
    expect(await file.text()).toBe(bytes.toString());
    expect(file.headers.get('content-type')).toBe('text/plain');
    expect(file.headers.get('x-content-type-options')).toBe('nosniff');
    expect(file.headers.get('content-disposition')).toMatch(/^attachment; filename="notes\.txt"/);
    expect(file.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    expect(file.headers.get('cache-control')).toBe('private, max-age=300');
    expect(file.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
  });

  // Last: it spends the anonymous budget of this address (the media file routes count against it too).
  it('are on a rate-limit refusal too', async () => {
    let res: ApiResponse | undefined;
    for (let i = 0; i < 60 && res?.status !== 429; i++) res = await stack.client.anonymous.post('/api/v1/auth/login', { username: 'nobody', password: 'wrong password' });
    expect(res?.status).toBe(429);
    expectJsonApiHeaders(res!, 'rate limited');
  });
});
