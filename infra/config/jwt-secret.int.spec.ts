import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from './config.js';
import { resolveJwtSecret } from './jwt-secret.js';

describe('resolveJwtSecret', () => {
  const dirs: string[] = [];
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jwt-secret-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('uses JWT_SECRET when set and writes nothing', async () => {
    const dataDir = await tempDir();
    const secret = 'x'.repeat(40);
    expect(await resolveJwtSecret({ jwtSecret: secret, dataDir })).toEqual({ secret, source: 'env', path: null });
    await expect(stat(join(dataDir, 'jwt-secret'))).rejects.toThrow();
  });

  it('generates a secret once, mode 0600, and reads the same one back on the next start', async () => {
    const dataDir = join(await tempDir(), 'not-yet-created');
    const first = await resolveJwtSecret({ jwtSecret: null, dataDir });
    expect(first.source).toBe('generated');
    expect(first.secret.length).toBeGreaterThanOrEqual(32);
    expect((await stat(first.path!)).mode & 0o777).toBe(0o600);
    const second = await resolveJwtSecret({ jwtSecret: null, dataDir });
    expect(second).toEqual({ secret: first.secret, source: 'file', path: first.path });
    expect((await readFile(first.path!, 'utf8')).trim()).toBe(first.secret);
  });

  it('agrees on one secret when two starts race', async () => {
    const dataDir = await tempDir();
    const [a, b] = await Promise.all([resolveJwtSecret({ jwtSecret: null, dataDir }), resolveJwtSecret({ jwtSecret: null, dataDir })]);
    expect(a.secret).toBe(b.secret);
  });

  it('refuses a secret file that is too short, naming JWT_SECRET', async () => {
    const dataDir = await tempDir();
    await writeFile(join(dataDir, 'jwt-secret'), 'short\n');
    const error = await resolveJwtSecret({ jwtSecret: null, dataDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/^JWT_SECRET: /);
  });
});
