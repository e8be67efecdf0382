import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createRootLogger } from '../compose/process.js';
import { redactUrl } from './log-safety.js';

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, logger: createRootLogger({ logLevel: 'info' }, sink) };
}

describe('log safety', () => {
  it('logs URLs without their query string, and without a push token in a device path', () => {
    expect(redactUrl('/media-files/media/c/m?X-Expires=1&X-Signature=abc')).toBe('/media-files/media/c/m?[redacted]');
    expect(redactUrl('/api/v1/conversations?token=eyJ.x.y&limit=5')).toBe('/api/v1/conversations?[redacted]');
    expect(redactUrl('/api/v1/devices/fcm%3Atoken-123')).toBe('/api/v1/devices/[redacted]');
    expect(redactUrl('/api/v1/conversations/c1/messages')).toBe('/api/v1/conversations/c1/messages');
  });

  it('logs an error without the statement values or the row a database driver copied into it', () => {
    const { lines, logger } = capture();
    const error = Object.assign(new Error('insert into rm_messages failed'), {
      code: '23514',
      params: ['m1', 'the secret text'],
      detail: 'Failing row contains (m1, the secret text).',
      parameters: ['the secret text'],
    });
    logger.error({ err: error }, 'projection batch failed; retrying');
    expect(lines).toHaveLength(1);
    const logged = JSON.parse(lines[0]!);
    expect(logged.err).toMatchObject({ type: 'Error', message: 'insert into rm_messages failed', code: '23514', params: '[redacted]', detail: '[redacted]' });
    expect(lines[0]).not.toContain('the secret text');
  });

  it('redacts passwords, tokens and message content logged by mistake', () => {
    const { lines, logger } = capture();
    logger.info({ password: 'hunter2-hunter2', token: 'eyJsecret', body: { content: 'the secret text', token: 'eyJother' }, headers: { authorization: 'Bearer eyJx' } }, 'oops');
    for (const secret of ['hunter2-hunter2', 'eyJsecret', 'the secret text', 'eyJother', 'Bearer eyJx']) expect(lines[0]).not.toContain(secret);
  });
});
