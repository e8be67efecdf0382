import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, type Config } from './config.js';

export const JWT_SECRET_FILE = 'jwt-secret';

export type JwtSecret = { secret: string; source: 'env' | 'file' | 'generated'; path: string | null };

/**
 * The secret that signs access tokens. JWT_SECRET when set; otherwise the one kept in
 * `${dataDir}/jwt-secret` (mode 0600), generated on first start, so tokens survive restarts in
 * embedded and PostgreSQL modes alike. Two processes starting at once agree on one file.
 */
export async function resolveJwtSecret(config: Pick<Config, 'jwtSecret' | 'dataDir'>): Promise<JwtSecret> {
  if (config.jwtSecret !== null) return { secret: config.jwtSecret, source: 'env', path: null };
  const path = join(config.dataDir, JWT_SECRET_FILE);
  const existing = await readSecret(path);
  if (existing !== null) return { secret: existing, source: 'file', path };
  await mkdir(config.dataDir, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  // Written aside, then linked into place: link() fails if the file exists, and a reader never
  // sees a half-written secret.
  const draft = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(draft, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(draft, 0o600);
    await link(draft, path);
  } catch (error) {
    if (!isCode(error, 'EEXIST')) throw error;
    const raced = await readSecret(path);
    if (raced === null) throw error;
    return { secret: raced, source: 'file', path };
  } finally {
    await rm(draft, { force: true });
  }
  return { secret, source: 'generated', path };
}

async function readSecret(path: string): Promise<string | null> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (error) {
    if (isCode(error, 'ENOENT')) return null;
    throw error;
  }
  const secret = raw.trim();
  if (secret.length < 32) {
    throw new ConfigError(`JWT_SECRET: unset, and ${path} holds fewer than 32 characters (delete it to generate a new one)`, ['JWT_SECRET']);
  }
  return secret;
}

function isCode(error: unknown, code: string): boolean {
  return error instanceof Error && 'code' in error && error.code === code;
}
