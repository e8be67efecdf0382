import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3rver } from '../../infra/object-store/testing/servers.js';
import { createApiStack, type ApiStack, type Registered } from '../api/testing/api-stack.js';
import { ContentType } from '../protocol/index.js';
import { connectClient } from '../gateway/testing/client.js';

/**
 * Media through the REST API over the whole stack (PGlite), with the server listening so the
 * presigned URLs work: on the local-disk store (URLs served by the server itself) and on S3
 * (s3rver on loopback).
 */
type Store = 'local-disk' | 's3rver';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const MiB = 1024 * 1024;

async function pngImage(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31) % 256;
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Polls `read` until `done` holds (bounded): no timing assertion, just a deadline. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe.each<Store>(['local-disk', 's3rver'])('media on %s', (store) => {
  let stack: ApiStack;
  let closeStore = async () => {};
  let alice: Registered, bob: Registered, carol: Registered;
  let conversationId: string;
  let otherConversationId: string;

  beforeAll(async () => {
    let env: Record<string, string>;
    if (store === 's3rver') {
      const s3 = await startS3rver();
      closeStore = () => s3.close();
      env = {
        S3_BUCKET: `media-e2e-${randomUUID().slice(0, 8)}`,
        S3_ENDPOINT: s3.endpoint,
        S3_ACCESS_KEY_ID: 'S3RVER',
        S3_SECRET_ACCESS_KEY: 'S3RVER',
        S3_FORCE_PATH_STYLE: 'true',
        S3_CREATE_BUCKET: 'true',
      };
    } else {
      const dir = await mkdtemp(join(tmpdir(), 'media-e2e-'));
      closeStore = () => rm(dir, { recursive: true, force: true });
      env = { CHAT_DATA_DIR: dir };
    }
    stack = await createApiStack('pglite', { env });
    await stack.listenAll();
    alice = await stack.client.register('m_alice');
    bob = await stack.client.register('m_bob');
    carol = await stack.client.register('m_carol');
    conversationId = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: bob.user_id })).body.conversation_id;
    otherConversationId = (await stack.client.as(alice).post('/api/v1/conversations', { participant_id: carol.user_id })).body.conversation_id;
   }, 180_000); // PGlite start-up and three registrations: slow on a loaded 2-core machine
  afterAll(async () => {
    await stack?.close();
    await closeStore();
  }, 60_000);

  const as = (user: Registered) => stack.client.as(user);

  async function announce(user: Registered, body: { content_type: string; size_bytes: number; file_name?: string; conversation_id?: string }) {
    return as(user).post('/api/v1/media', { file_name: 'file.bin', conversation_id: conversationId, ...body });
  }

  /** Announces and uploads `bytes` as the client would; returns the media_id. */
  async function upload(user: Registered, bytes: Buffer, contentType: string, fileName = 'file.bin', conversation = conversationId): Promise<string> {
    const announced = await announce(user, { content_type: contentType, size_bytes: bytes.length, file_name: fileName, conversation_id: conversation });
    expect(announced.status).toBe(201);
    const { upload_url, upload_method, upload_headers } = announced.body;
    const put = await fetch(upload_url, { method: upload_method, headers: upload_headers, body: bytes });
    expect(put.status).toBe(200);
    return announced.body.media_id;
  }

  const send = (user: Registered, body: Record<string, unknown>, conversation = conversationId) => as(user).post(`/api/v1/conversations/${conversation}/messages`, body);

  async function historyMessage(user: Registered, messageId: string) {
    const res = await as(user).get(`/api/v1/conversations/${conversationId}/messages?limit=200`);
    expect(res.status).toBe(200);
    return res.body.messages.find((m: { message_id: string }) => m.message_id === messageId);
  }

  it('upload → message → the other member downloads the same bytes, and history shows a thumbnail within 2 s', async () => {
    const image = await pngImage(900, 600);
    const announced = await announce(alice, { content_type: 'image/png', size_bytes: image.length, file_name: 'holiday.png' });
    expect(announced.status).toBe(201);
    expect(announced.body).toMatchObject({ upload_method: 'PUT', upload_headers: { 'content-type': 'image/png' }, size_bytes: image.length, file_name: 'holiday.png' });
    expect(Date.parse(announced.body.expires_at)).toBeGreaterThan(Date.now());
    const put = await fetch(announced.body.upload_url, { method: 'PUT', headers: announced.body.upload_headers, body: image });
    expect(put.status).toBe(200);
    const mediaId: string = announced.body.media_id;

    const sent = await send(alice, { content_type: 'image', media_id: mediaId, content: 'the beach', client_message_id: `img-${mediaId}` });
    expect(sent.status).toBe(201);
    expect(sent.body).toMatchObject({
      content_type: 'image',
      content: 'the beach',
      media: { media_id: mediaId, mime_type: 'image/png', size_bytes: image.length, file_name: 'holiday.png' },
    });

    // Idempotent retry: same client_message_id → 200 and the original message.
    const again = await send(alice, { content_type: 'image', media_id: mediaId, content: 'the beach', client_message_id: `img-${mediaId}` });
    expect(again.status).toBe(200);
    expect(again.body.message_id).toBe(sent.body.message_id);

    const link = await as(bob).get(`/api/v1/media/${mediaId}`);
    expect(link.status).toBe(200);
    expect(link.body).toMatchObject({ media_id: mediaId, mime_type: 'image/png', size_bytes: image.length, file_name: 'holiday.png' });
    const downloaded = await fetch(link.body.url);
    expect(downloaded.status).toBe(200);
    expect(downloaded.headers.get('content-type')).toBe('image/png');
    expect(sha256(new Uint8Array(await downloaded.arrayBuffer()))).toBe(sha256(image));

    const message = await eventually(
      () => historyMessage(bob, sent.body.message_id),
      (m) => m?.media?.thumbnail?.status === 'ready',
      2_000,
    );
    expect(message.media).toMatchObject({ media_id: mediaId, mime_type: 'image/png', thumbnail: { status: 'ready', mime_type: 'image/webp', width: 320, height: 213 } });
    const thumb = await fetch(message.media.thumbnail.url);
    expect(thumb.status).toBe(200);
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 320, height: 213 });
  });

  it('is write-once from the moment a message names it: a PUT to the upload URL afterwards changes nothing anyone downloads', async () => {
    const image = await pngImage(300, 200);
    const announced = await announce(alice, { content_type: 'image/png', size_bytes: image.length, file_name: 'sent.png' });
    const { media_id: mediaId, upload_url, upload_headers } = announced.body;
    expect((await fetch(upload_url, { method: 'PUT', headers: upload_headers, body: image })).status).toBe(200);
    const sent = await send(alice, { content_type: 'image', media_id: mediaId, content: 'as sent' });
    expect(sent.status).toBe(201);

    // The same URL, still valid, used again with other bytes of the same size and type.
    const swapped = Buffer.alloc(image.length, 0x41);
    const put = await fetch(upload_url, { method: 'PUT', headers: upload_headers, body: swapped });
    await put.arrayBuffer();
    const downloadBy = async (user: Registered) => {
      const link = await as(user).get(`/api/v1/media/${mediaId}`);
      expect(link.status).toBe(200);
      const res = await fetch(link.body.url);
      expect(res.status).toBe(200);
      return sha256(new Uint8Array(await res.arrayBuffer()));
    };
    expect(await downloadBy(bob)).toBe(sha256(image));
    expect(await downloadBy(alice)).toBe(sha256(image));

    // Sending it again names the same sealed bytes; it does not take the new upload.
    const resent = await send(alice, { content_type: 'image', media_id: mediaId, content: 'once more' });
    expect(resent.status).toBe(201);
    expect(await downloadBy(bob)).toBe(sha256(image));
    const message = await eventually(() => historyMessage(bob, sent.body.message_id), (m) => m?.media?.thumbnail?.status !== 'pending', 5_000);
    expect(message.media.thumbnail).toMatchObject({ status: 'ready', width: 300, height: 200 });
  });

  it('media sent before uploads were sealed (no sealed copy) still download, and are sealed by their next send', async () => {
    const bytes = Buffer.from('%PDF-1.4 sent by an older server');
    const mediaId = await upload(alice, bytes, 'application/pdf', 'old.pdf');
    expect((await send(alice, { content_type: 'file', media_id: mediaId })).status).toBe(201);
    // Back to the state an older server left: the upload under its upload key, nothing sealed.
    const db = stack.databases[0]!;
    const { rows } = await db.query<{ object_key: string; sealed_key: string }>('SELECT object_key, sealed_key FROM media_objects WHERE media_id = $1', [mediaId]);
    const { object_key: uploadKey, sealed_key: sealedKey } = rows[0]!;
    expect(sealedKey).toMatch(new RegExp(`^sealed/${conversationId}/${mediaId}/`));
    await stack.media.objects.put(uploadKey, bytes, { contentType: 'application/pdf' });
    await stack.media.objects.delete(sealedKey);
    await db.query('UPDATE media_objects SET sealed_key = NULL WHERE media_id = $1', [mediaId]);

    const link = await as(bob).get(`/api/v1/media/${mediaId}`);
    expect(link.status).toBe(200);
    expect(sha256(new Uint8Array(await (await fetch(link.body.url)).arrayBuffer()))).toBe(sha256(bytes));

    expect((await send(alice, { content_type: 'file', media_id: mediaId, content: 'again' })).status).toBe(201);
    const resealed = (await db.query<{ sealed_key: string | null }>('SELECT sealed_key FROM media_objects WHERE media_id = $1', [mediaId])).rows[0]!.sealed_key;
    expect(resealed).toMatch(/^sealed\//);
    await stack.media.objects.put(uploadKey, Buffer.from('%PDF-1.4 swapped after the send!'), { contentType: 'application/pdf' });
    const after = await as(bob).get(`/api/v1/media/${mediaId}`);
    expect(sha256(new Uint8Array(await (await fetch(after.body.url)).arrayBuffer()))).toBe(sha256(bytes));
  });

  it('uploads far past the JSON body limit (3 MiB) and downloads them byte for byte', async () => {
    const bytes = Buffer.alloc(3 * MiB);
    for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE((i * 2654435761) >>> 0, i);
    const mediaId = await upload(alice, bytes, 'application/zip', 'archive.zip');
    const sent = await send(alice, { content_type: 'file', media_id: mediaId });
    expect(sent.status).toBe(201);
    expect(sent.body.media.thumbnail).toMatchObject({ status: 'none', reason: 'files have no thumbnail' });
    const link = await as(bob).get(`/api/v1/media/${mediaId}`);
    const res = await fetch(link.body.url);
    expect(res.headers.get('content-disposition')).toContain('archive.zip');
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(sha256(bytes));
  });

  // S3 signs and checks its own URLs; this is the local-disk store served by this server
  it.runIf(store === 'local-disk')('the server refuses a tampered or unsized upload to its own signed URLs', async () => {
    const announced = await announce(alice, { content_type: 'text/plain', size_bytes: 5, file_name: 't.txt' });
    const url: string = announced.body.upload_url;
    const tampered = await fetch(url.replace(/X-Signature=[^&]+/, 'X-Signature=forged'), { method: 'PUT', headers: announced.body.upload_headers, body: 'hello' });
    expect(tampered.status).toBe(403);
    expect(((await tampered.json()) as { error: { code: string } }).error.code).toBe('signature_invalid');
    const otherType = await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/html' }, body: 'hello' });
    expect(otherType.status).toBe(403);
    await otherType.arrayBuffer();
    const chunked = await fetch(url, {
      method: 'PUT',
      headers: announced.body.upload_headers,
      body: new ReadableStream({ start: (c) => { c.enqueue(new TextEncoder().encode('hello')); c.close(); } }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(411);
    await chunked.arrayBuffer();
    expect((await send(alice, { content_type: 'file', media_id: announced.body.media_id })).body.error.code).toBe('media_not_uploaded');
  });

  it('a non-member gets the answers of an unknown conversation and unknown media, announcing into the conversation and downloading its media', async () => {
    const mediaId = await upload(alice, Buffer.from('%PDF-1.4 tiny'), 'application/pdf', 'notes.pdf');
    const announced = await announce(carol, { content_type: 'image/png', size_bytes: 10 });
    expect(announced.status).toBe(404);
    expect(announced.body.error.code).toBe('conversation_not_found');
    const download = await as(carol).get(`/api/v1/media/${mediaId}`);
    expect(download.status).toBe(404);
    expect(download.body.error).toEqual({ code: 'media_not_found', message: `media_id: no media ${mediaId}` });
    const unknown = await announce(alice, { content_type: 'image/png', size_bytes: 10, conversation_id: randomUUID() });
    expect(unknown.status).toBe(404);
    expect((await as(bob).get(`/api/v1/media/${randomUUID()}`)).body.error.code).toBe('media_not_found');
  });

  it('a 101 MB announcement gets 413 and an unlisted type 400, naming the field', async () => {
    // 101 MB either way it is counted: 101,000,000 bytes and 101 MiB are both over the 100 MB limit.
    for (const size of [101_000_000, 101 * MiB]) {
      const big = await announce(alice, { content_type: 'video/mp4', size_bytes: size });
      expect(big.status).toBe(413);
      expect(big.body.error.code).toBe('media_too_large');
      expect(big.body.error.message).toMatch(/^size_bytes: .*100000000/);
    }
    expect((await announce(alice, { content_type: 'video/mp4', size_bytes: 100_000_000 })).status).toBe(201);
    const exe = await announce(alice, { content_type: 'application/x-msdownload', size_bytes: 1000 });
    expect(exe.status).toBe(400);
    expect(exe.body.error.code).toBe('media_type_not_allowed');
    expect(exe.body.error.message).toMatch(/^content_type: "application\/x-msdownload" is not allowed/);
    const svg = await announce(alice, { content_type: 'image/svg+xml', size_bytes: 1000 });
    expect(svg.status).toBe(400);
    const missing = await as(alice).post('/api/v1/media', { content_type: 'image/png', conversation_id: conversationId, file_name: 'a.png' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toMatch(/size_bytes/);
  });

  it('refuses a message naming media never uploaded, unknown, of another conversation, of another sender, or of the wrong kind', async () => {
    const announced = await announce(alice, { content_type: 'image/jpeg', size_bytes: 1234, file_name: 'never.jpg' });
    const never = await send(alice, { content_type: 'image', media_id: announced.body.media_id, content: '' });
    expect(never.status).toBe(409);
    expect(never.body.error.code).toBe('media_not_uploaded');

    const unknown = await send(alice, { content_type: 'file', media_id: randomUUID() });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('media_not_found');

    const elsewhere = await upload(alice, Buffer.from('elsewhere'), 'text/plain', 'a.txt', otherConversationId);
    const wrongConversation = await send(alice, { content_type: 'file', media_id: elsewhere });
    expect(wrongConversation.status).toBe(409);
    expect(wrongConversation.body.error.code).toBe('media_wrong_conversation');

    const alices = await upload(alice, Buffer.from('mine'), 'text/plain', 'mine.txt');
    const notYours = await send(bob, { content_type: 'file', media_id: alices });
    expect(notYours.status).toBe(403);
    expect(notYours.body.error.code).toBe('media_not_yours');

    const pdf = await upload(alice, Buffer.from('%PDF-1.4'), 'application/pdf', 'a.pdf');
    const asImage = await send(alice, { content_type: 'image', media_id: pdf });
    expect(asImage.status).toBe(400);
    expect(asImage.body.error.code).toBe('media_kind_mismatch');

    expect((await send(alice, { content_type: 'image', content: 'no media' })).body.error.code).toBe('media_required');
    expect((await send(alice, { content_type: 'text', content: 'hi', media_id: pdf })).body.error.code).toBe('unexpected_media');

    const stranger = await send(carol, { content_type: 'file', media_id: pdf });
    expect(stranger.status).toBe(404);
    expect(stranger.body.error.code).toBe('conversation_not_found');
  });

  it('never accepts an upload of another size than announced', async () => {
    const announced = await announce(alice, { content_type: 'text/plain', size_bytes: 10, file_name: 'short.txt' });
    const put = await fetch(announced.body.upload_url, { method: 'PUT', headers: announced.body.upload_headers, body: Buffer.from('12345') });
    if (store === 'local-disk') {
      expect(put.status).toBe(400); // the server's own signed URL checks the size
    } else {
      await put.arrayBuffer(); // s3rver does not enforce the signed Content-Length; the send does
    }
    const sent = await send(alice, { content_type: 'file', media_id: announced.body.media_id });
    expect(sent.status).toBe(409);
    expect(sent.body.error.code).toBe(store === 'local-disk' ? 'media_not_uploaded' : 'media_mismatch');
  });

  it('a corrupt image is accepted without a thumbnail and the server keeps serving', async () => {
    const garbage = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('definitely not a jpeg '.repeat(50))]);
    const mediaId = await upload(alice, garbage, 'image/jpeg', 'broken.jpg');
    const sent = await send(alice, { content_type: 'image', media_id: mediaId });
    expect(sent.status).toBe(201);
    const message = await eventually(
      () => historyMessage(bob, sent.body.message_id),
      (m) => m?.media?.thumbnail?.status !== 'pending',
      5_000,
    );
    expect(message.media.thumbnail).toMatchObject({ status: 'none', url: null });
    expect(message.media.thumbnail.reason).toMatch(/could not be decoded/);
    expect((await stack.client.anonymous.get('/healthz')).status).toBe(200);
    expect((await send(alice, { content_type: 'text', content: 'still here' })).status).toBe(201);
  });

  it('videos without ffmpeg and files get a thumbnail status none with a reason', async () => {
    const video = await upload(alice, Buffer.from('fake mp4 bytes'), 'video/mp4', 'clip.mp4');
    const file = await upload(alice, Buffer.from('%PDF-1.4'), 'application/pdf', 'doc.pdf');
    const v = await send(alice, { content_type: 'video', media_id: video, content: 'clip' });
    const f = await send(alice, { content_type: 'file', media_id: file });
    expect([v.status, f.status]).toEqual([201, 201]);
    const vm = await eventually(() => historyMessage(bob, v.body.message_id), (m) => m?.media?.thumbnail?.status !== 'pending', 5_000);
    expect(vm.media.thumbnail.status).toBe('none');
    // ffmpeg is not installed on the test machines; where it is, this fake video does not decode either
    expect(vm.media.thumbnail.reason).toMatch(/ffmpeg/);
    const fm = await eventually(() => historyMessage(bob, f.body.message_id), (m) => m?.media?.thumbnail?.status !== 'pending', 5_000);
    expect(fm.media.thumbnail).toMatchObject({ status: 'none', reason: 'files have no thumbnail' });
  });

  it('a media message sent over the WebSocket is checked the same way and reaches history with its media', async () => {
    const { websocket_url } = (await as(alice).get('/api/v1/realtime')).body;
    const ws = await connectClient(websocket_url, { token: alice.token });
    try {
      const send = (mediaId: string | undefined, contentType: ContentType, clientMessageId: string) =>
        ws.request({ case: 'sendMessage', value: { conversationId, content: 'over ws', contentType, clientMessageId, ...(mediaId === undefined ? {} : { mediaId }) } });

      const missing = await send(undefined, ContentType.IMAGE, `ws-none-${randomUUID()}`);
      expect(missing.body.case === 'error' && missing.body.value.reason).toBe('media_required');
      const announced = await announce(alice, { content_type: 'image/png', size_bytes: 10 });
      const notUploaded = await send(announced.body.media_id, ContentType.IMAGE, `ws-nu-${randomUUID()}`);
      expect(notUploaded.body.case === 'error' && notUploaded.body.value.reason).toBe('media_not_uploaded');

      const image = await pngImage(64, 48);
      const mediaId = await upload(alice, image, 'image/png', 'ws.png');
      const wrongKind = await send(mediaId, ContentType.VIDEO, `ws-wk-${randomUUID()}`);
      expect(wrongKind.body.case === 'error' && wrongKind.body.value.reason).toBe('media_kind_mismatch');
      const acked = await send(mediaId, ContentType.IMAGE, `ws-ok-${randomUUID()}`);
      expect(acked.body.case).toBe('sendAck');
      if (acked.body.case !== 'sendAck') throw new Error('unreachable');
      const messageId = acked.body.value.messageId;
      const m = await eventually(() => historyMessage(bob, messageId), (found) => found?.media?.thumbnail?.status === 'ready', 5_000);
      expect(m).toMatchObject({ content_type: 'image', content: 'over ws', media: { media_id: mediaId, mime_type: 'image/png', size_bytes: image.length, file_name: 'ws.png' } });
      const download = await as(bob).get(`/api/v1/media/${mediaId}`);
      expect(sha256(new Uint8Array(await (await fetch(download.body.url)).arrayBuffer()))).toBe(sha256(image));
    } finally {
      ws.close();
    }
  });
});
