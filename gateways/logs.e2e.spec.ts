import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiStack, type ApiStack, type Registered } from './api/testing/api-stack.js';
import { createRootLogger } from './compose/process.js';
import { connectClient } from './gateway/testing/client.js';

/**
 * The server's own log output (the root logger of `npm start`, at info) while users do what
 * puts secrets on the wire: passwords and tokens, a token in a REST query string and in the
 * WebSocket URL, signed media URLs, a push token in a path, message text pushed to an offline
 * user through the default log provider. None of them may appear in any log line.
 */
describe('logs keep secrets out', () => {
  const lines: string[] = [];
  let stack: ApiStack;
  let dir: string;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'logs-e2e-'));
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        done();
      },
    });
    stack = await createApiStack('pglite', {
      logger: createRootLogger({ logLevel: 'info' }, sink),
      env: { CHAT_DATA_DIR: dir, PUSH_BATCH_QUIET_MS: '0', PUSH_BATCH_MAX_DELAY_MS: '0', PUSH_MIN_INTERVAL_MS: '0' },
    });
    base = await stack.listenAll();
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function until<T>(probe: () => T | undefined, what: string, boundMs = 10_000): Promise<T> {
    const deadline = Date.now() + boundMs;
    for (;;) {
      const found = probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${boundMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  it('no password, token, signed URL, push token or message text in any line', async () => {
    const password = 'Correct-Horse-Battery-Staple-7421';
    const alice: Registered = await stack.client.register('logs_a', password);
    const bob: Registered = await stack.client.register('logs_b');
    const as = stack.client.as(alice);
    const login = await stack.client.anonymous.post('/api/v1/auth/login', { username: alice.username, password });
    expect(login.status).toBe(200);

    // A token in a REST query string (a client that put it there, or a proxy's rewrite).
    const inQuery = await fetch(`${base}/api/v1/conversations?token=${login.body.token}&limit=5`, { headers: { authorization: `Bearer ${login.body.token}` } });
    expect(inQuery.status).toBe(200);

    // Signed media URLs: the upload and the download.
    const conversationId = (await as.post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    const bytes = Buffer.from('quarterly numbers');
    const announced = await as.post('/api/v1/media', { content_type: 'text/plain', size_bytes: bytes.length, file_name: 'q3.txt', conversation_id: conversationId });
    expect((await fetch(announced.body.upload_url, { method: 'PUT', headers: announced.body.upload_headers, body: bytes })).status).toBe(200);
    const link = await stack.client.as(bob).get(`/api/v1/media/${announced.body.media_id}`);
    expect((await fetch(link.body.url)).status).toBe(200);
    const signatures = [announced.body.upload_url, link.body.url].map((u: string) => new URL(u).searchParams.get('X-Signature')!);

    // A push token, registered, then named in a path to delete it; bob gets a push (he is offline).
    const pushToken = 'bob-device-token-0123456789-abcdefghijklmnopqrstuvwxyz';
    expect((await stack.client.as(bob).post('/api/v1/devices', { platform: 'android', token: pushToken })).status).toBe(201);
    const text = 'the vault code is 90210, tell nobody';
    expect((await as.post(`/api/v1/conversations/${conversationId}/messages`, { content: text, content_type: 'text' })).status).toBe(201);
    const pushed = await until(() => lines.find((l) => l.includes('push notification (log provider: not sent)')), 'push log line');
    expect(JSON.parse(pushed)).toMatchObject({ title_chars: alice.username.length, body_chars: text.length });
    expect((await stack.client.as(bob).delete(`/api/v1/devices/${encodeURIComponent(pushToken)}`)).status).toBe(204);

    // A token in the WebSocket URL (browsers cannot set headers on a WebSocket).
    const { websocket_url } = (await as.get('/api/v1/realtime')).body;
    const ws = await connectClient(`${websocket_url}?token=${alice.token}`, { token: '' });
    ws.close();

    // The request lines are there (so the checks below look at real output), with their paths.
    await until(() => lines.find((l) => l.includes('/media-files/') && l.includes('"incoming request"')), 'request line of the signed URL');

    const log = lines.join('\n');
    const secrets: Record<string, string> = {
      password,
      'registration token': alice.token,
      'login token': login.body.token,
      'upload signature': signatures[0]!,
      'download signature': signatures[1]!,
      'push token': pushToken,
      'push token (URL-encoded)': encodeURIComponent(pushToken),
      'message text': text,
      'part of the message text': '90210',
    };
    expect(Object.keys(secrets).filter((what) => log.includes(secrets[what]!))).toEqual([]);
    // What is logged instead: the path, with the push token and the query string left out.
    expect(lines.some((l) => l.includes('"url":"/api/v1/devices/[redacted]"'))).toBe(true);
    expect(lines.some((l) => l.includes('"url":"/api/v1/conversations?[redacted]"'))).toBe(true);
  });
});
