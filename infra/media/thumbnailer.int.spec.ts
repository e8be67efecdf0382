import { Readable } from 'node:stream';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createSharpThumbnailer, NO_FFMPEG_REASON, probeFfmpeg } from './thumbnailer.js';

/** The sharp thumbnailer on real images (and on bytes that are not). */
const thumbnailer = createSharpThumbnailer({ ffmpegPath: null });
const source = (mimeType: string, bytes: Buffer) => ({ mimeType, body: Readable.from([bytes]) });

async function image(width: number, height: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 90 } } })[format]().toBuffer();
}

describe('sharp thumbnailer', () => {
  it('makes a WebP of at most 320 px on the longer side, keeping the aspect ratio', async () => {
    const out = await thumbnailer.make(source('image/jpeg', await image(1200, 2400, 'jpeg')));
    expect(out.status).toBe('ready');
    if (out.status !== 'ready') return;
    expect(out.thumbnail).toMatchObject({ mimeType: 'image/webp', width: 160, height: 320 });
    expect(await sharp(out.thumbnail.data).metadata()).toMatchObject({ format: 'webp', width: 160, height: 320 });
  });

  it('does not enlarge a small image', async () => {
    const out = await thumbnailer.make(source('image/png', await image(40, 30, 'png')));
    expect(out).toMatchObject({ status: 'ready', thumbnail: { width: 40, height: 30 } });
  });

  it('gives none with a reason for bytes that are not an image, a truncated image, or a decompression bomb', async () => {
    const garbage = await thumbnailer.make(source('image/png', Buffer.from('hello, not a png')));
    expect(garbage.status).toBe('none');
    const jpeg = await image(800, 600, 'jpeg');
    const truncated = await thumbnailer.make(source('image/jpeg', jpeg.subarray(0, Math.floor(jpeg.length / 3))));
    expect(truncated).toMatchObject({ status: 'none', reason: expect.stringMatching(/^the image could not be decoded/) });
    // a thumbnailer limited to 1 MP refuses a 2 MP image before decoding it (decompression bombs)
    const small = createSharpThumbnailer({ ffmpegPath: null, maxInputPixels: 1_000_000 });
    const bomb = await small.make(source('image/png', await image(2000, 1000, 'png')));
    expect(bomb.status).toBe('none');
  });

  it('says why a video gets none without ffmpeg, and what other types get', async () => {
    expect(await thumbnailer.make(source('video/mp4', Buffer.from('x')))).toEqual({ status: 'none', reason: NO_FFMPEG_REASON });
    expect(await thumbnailer.make(source('application/pdf', Buffer.from('x')))).toEqual({ status: 'none', reason: 'no thumbnail for application/pdf' });
  });

  it('probes ffmpeg by running it: a missing binary is null', async () => {
    expect(await probeFfmpeg('definitely-not-an-ffmpeg-binary')).toBeNull();
  });
});
