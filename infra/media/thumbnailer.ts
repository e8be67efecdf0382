import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import type { Thumbnail, Thumbnailer, ThumbnailOutcome } from '../../gateways/ports/media.js';

/**
 * Thumbnails with sharp (libvips): at most `maxSize` px on the longer side, WebP, EXIF orientation
 * applied. Videos: the first frame through ffmpeg when it is on PATH (`ffmpegPath`), otherwise
 * `none` saying so. A source that does not decode gives `none`, never an exception.
 */
export type SharpThumbnailerOptions = {
  maxSize?: number;
  /** The ffmpeg command, or null when there is none (see probeFfmpeg). */
  ffmpegPath: string | null;
  /** Largest decoded image, in pixels (decompression bombs stop here). */
  maxInputPixels?: number;
};

export const NO_FFMPEG_REASON = 'video thumbnails need ffmpeg, which is not installed on this server';

/**
 * `command` when it runs as ffmpeg (`<command> -version` exits 0 within 5 s), else null. Spawning
 * finds the binary the way the worker will run it (PATH), without reading the environment here.
 */
export function probeFfmpeg(command = 'ffmpeg'): Promise<string | null> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(command, ['-version'], { stdio: 'ignore', timeout: 5_000 });
    } catch {
      resolve(null);
      return;
    }
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code === 0 ? command : null));
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export function createSharpThumbnailer(options: SharpThumbnailerOptions) {
  const maxSize = options.maxSize ?? 320;
  const limitInputPixels = options.maxInputPixels ?? 100_000_000;

  async function fromImage(bytes: Buffer): Promise<ThumbnailOutcome> {
    try {
      const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels })
        .rotate()
        .resize(maxSize, maxSize, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 75 })
        .toBuffer({ resolveWithObject: true });
      const thumbnail: Thumbnail = { data, mimeType: 'image/webp', width: info.width, height: info.height };
      return { status: 'ready', thumbnail };
    } catch (error) {
      const detail = error instanceof Error ? error.message.split('\n')[0]!.slice(0, 200) : String(error);
      return { status: 'none', reason: `the image could not be decoded (${detail})` };
    }
  }

  /** The first frame as PNG, through ffmpeg, from a temporary file (MP4s often keep their index at the end). */
  async function firstFrame(ffmpeg: string, body: Readable): Promise<Buffer | string> {
    const file = join(tmpdir(), `chat-video-${randomUUID()}`);
    try {
      await pipeline(body, createWriteStream(file));
      return await new Promise<Buffer | string>((resolve) => {
        const child = spawn(ffmpeg, ['-v', 'error', '-i', file, '-frames:v', '1', '-f', 'image2pipe', '-vcodec', 'png', 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        let err = '';
        child.stdout.on('data', (c: Buffer) => out.push(c));
        child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')).length > 4000 && (err = err.slice(-4000)));
        child.on('error', (e) => resolve(`ffmpeg could not run (${e.message})`));
        child.on('close', (code) => resolve(code === 0 && out.length > 0 ? Buffer.concat(out) : `ffmpeg could not read the video (${err.trim().split('\n')[0] ?? `exit ${code}`})`));
      });
    } finally {
      await rm(file, { force: true });
    }
  }

  return {
    async make({ mimeType, body }) {
      if (mimeType.startsWith('image/')) return fromImage(await readAll(body));
      if (mimeType.startsWith('video/')) {
        if (options.ffmpegPath === null) {
          body.destroy();
          return { status: 'none', reason: NO_FFMPEG_REASON };
        }
        const frame = await firstFrame(options.ffmpegPath, body);
        if (typeof frame === 'string') return { status: 'none', reason: frame };
        return fromImage(frame);
      }
      body.destroy();
      return { status: 'none', reason: `no thumbnail for ${mimeType}` };
    },
  } satisfies Thumbnailer;
}
