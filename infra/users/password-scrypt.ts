import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * The project's first password hashes: scrypt (node:crypto), before Argon2id (password.ts). New
 * hashes are Argon2id; these still verify, and a successful login rehashes them. The stored
 * string carries its own parameters and salt:
 *
 *   $scrypt$ln=15,r=8,p=1$<salt, base64>$<key, base64>
 *
 * (ln = log2 of N, the CPU/memory cost; r = block size; p = parallelism.) `hashScrypt` remains
 * for tests that make such legacy hashes.
 */

export type ScryptCost = { ln: number; r: number; p: number };

/** What the project used to write: 2^15 × 8 × 128 bytes = 32 MiB (below current guidance, N ≥ 2^17). */
export const LEGACY_SCRYPT_COST: ScryptCost = Object.freeze({ ln: 15, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Bounds for parameters read back from storage (a corrupted row must not ask for gigabytes). */
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;

const HASH_PATTERN = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function derive(password: string, salt: Buffer, keyLength: number, cost: ScryptCost): Promise<Buffer> {
  const N = 2 ** cost.ln;
  const options: ScryptOptions = { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    // NFC: the same password typed with composed or decomposed accents is the same password.
    scrypt(password.normalize('NFC'), salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashScrypt(password: string, cost: ScryptCost = LEGACY_SCRYPT_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, cost);
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `password` matches `stored`; false for a wrong password or a malformed hash. */
export function isScryptHash(stored: string): boolean {
  return stored.startsWith('$scrypt$');
}

export async function verifyScrypt(password: string, stored: string): Promise<boolean> {
  const m = HASH_PATTERN.exec(stored);
  if (!m) return false;
  const cost = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (cost.ln < 1 || cost.ln > MAX_LN || cost.r < 1 || cost.r > MAX_R || cost.p < 1 || cost.p > MAX_P) return false;
  const salt = Buffer.from(m[4]!, 'base64');
  const expected = Buffer.from(m[5]!, 'base64');
  if (expected.length < 16) return false;
  const actual = await derive(password, salt, expected.length, cost);
  return timingSafeEqual(actual, expected);
}
