import { describe, expect, it } from 'vitest';
import { DEFAULT_MEDIA_TYPES, parseConfig } from '../config/config.js';
import { configErrorOf } from '../config/testing.js';

/** The media variables of infra/config. */
describe('media configuration', () => {
  it('defaults: 100 MB (100,000,000 bytes), the default allowlist, local disk', () => {
    const { media, publicUrl } = parseConfig({});
    expect(publicUrl).toBeNull();
    expect(media).toEqual({ maxBytes: 100_000_000, allowedTypes: DEFAULT_MEDIA_TYPES, uploadUrlTtlSeconds: 900, downloadUrlTtlSeconds: 300, s3: null });
    expect(Object.isFrozen(media)).toBe(true);
    expect(media.allowedTypes).not.toContain('image/svg+xml');
  });

  it('reads the limits, the allowlist (with type/* families) and PUBLIC_URL', () => {
    const config = parseConfig({
      MEDIA_MAX_BYTES: '1048576',
      MEDIA_ALLOWED_TYPES: ' Image/*, application/pdf ,,',
      MEDIA_UPLOAD_URL_TTL_SECONDS: '60',
      MEDIA_DOWNLOAD_URL_TTL_SECONDS: '30',
      PUBLIC_URL: 'https://chat.example.com/',
    });
    expect(config.publicUrl).toBe('https://chat.example.com');
    expect(config.media).toMatchObject({ maxBytes: 1_048_576, allowedTypes: ['image/*', 'application/pdf'], uploadUrlTtlSeconds: 60, downloadUrlTtlSeconds: 30 });
  });

  it('reads S3 for AWS, MinIO or s3rver', () => {
    expect(parseConfig({ S3_BUCKET: 'chat-media', S3_REGION: 'eu-west-1' }).media.s3).toEqual({
      bucket: 'chat-media',
      region: 'eu-west-1',
      endpoint: null,
      credentials: null,
      forcePathStyle: false,
      createBucket: false,
    });
    expect(
      parseConfig({
        S3_BUCKET: 'media',
        S3_ENDPOINT: 'http://127.0.0.1:9000',
        S3_ACCESS_KEY_ID: 'minio',
        S3_SECRET_ACCESS_KEY: 'minio-secret',
        S3_FORCE_PATH_STYLE: 'true',
        S3_CREATE_BUCKET: '1',
      }).media.s3,
    ).toEqual({
      bucket: 'media',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      credentials: { accessKeyId: 'minio', secretAccessKey: 'minio-secret' },
      forcePathStyle: true,
      createBucket: true,
    });
  });

  it('refuses bad values, naming the variable', () => {
    expect(configErrorOf({ MEDIA_ALLOWED_TYPES: 'image/png, exe' }).message).toMatch(/^MEDIA_ALLOWED_TYPES: .*"exe"/);
    expect(configErrorOf({ MEDIA_MAX_BYTES: '0' }).variables).toEqual(['MEDIA_MAX_BYTES']);
    expect(configErrorOf({ PUBLIC_URL: 'ftp://x' }).variables).toEqual(['PUBLIC_URL']);
    expect(configErrorOf({ S3_BUCKET: 'Bad_Bucket' }).variables).toEqual(['S3_BUCKET']);
    expect(configErrorOf({ S3_FORCE_PATH_STYLE: 'yes' }).variables).toEqual(['S3_FORCE_PATH_STYLE']);
    const half = configErrorOf({ S3_BUCKET: 'media', S3_ACCESS_KEY_ID: 'key' });
    expect(half.variables).toEqual(['S3_SECRET_ACCESS_KEY']);
    expect(half.message).toMatch(/^S3_SECRET_ACCESS_KEY is required with S3_ACCESS_KEY_ID/);
    const secret = configErrorOf({ S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 'hunter2-secret' });
    expect(secret.variables).toEqual(['S3_BUCKET']);
    expect(secret.message).not.toContain('hunter2');
  });
});
