import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../domain/ports/health.js';
import { createReadYourWrites } from './deps.js';

/** A write that was stored gets its answer even when the read model cannot be asked about it. */
describe('read-your-writes', () => {
  const settings = { maxMessageBytes: 1, rateLimitMax: 1, rateLimitWindowMs: 1, readYourWritesTimeoutMs: 50, authFailureLimitMax: 1, authRateLimitMax: 1, passwordMinLength: 15, trustedProxies: [] };

  it('answers when the checkpoint cannot be read (the database went down after the write), instead of failing the stored write', async () => {
    const settle = createReadYourWrites({
      settings,
      projector: { waitFor: () => Promise.reject(new DependencyUnavailableError('postgresql')) },
    });
    await expect(settle({ shard: 0, position: 7 }, pino({ level: 'silent' }))).resolves.toBeUndefined();
  });

  it('waits for the read model otherwise', async () => {
    const asked: number[] = [];
    const settle = createReadYourWrites({ settings, projector: { waitFor: async (_p, at) => { asked.push(at.position); return true; } } });
    await settle({ shard: 0, position: 9 }, pino({ level: 'silent' }));
    expect(asked).toEqual([9]);
  });
});
