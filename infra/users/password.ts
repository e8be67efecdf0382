import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { isScryptHash, verifyScrypt } from './password-scrypt.js';

/**
 * Password hashing with Argon2id (@node-rs/argon2: its async calls run on libuv's thread pool,
 * never on the event loop). The stored string is the PHC format, carrying its own parameters and
 * salt:
 *
 *   $argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<hash, base64>
 *
 * Hashes of older schemes (scrypt, password-scrypt.ts) and Argon2id hashes with other parameters
 * still verify; `verify` says when a hash should be replaced (`needsRehash`), and the user
 * repository rehashes on the next successful login.
 */

export type Argon2Params = {
  /** Memory per hash, in KiB (m). */
  memoryKiB: number;
  /** Passes over the memory (t). */
  timeCost: number;
  /** Lanes (p). */
  parallelism: number;
};

/**
 * OWASP Password Storage Cheat Sheet, first of its equivalent Argon2id settings: 19 MiB, 2 passes,
 * 1 lane (about 25-50 ms on one core here).
 */
export const OWASP_ARGON2ID: Argon2Params = Object.freeze({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });

/** Bounds for parameters read back from storage: a corrupted row must not ask for gigabytes. */
const MAX_MEMORY_KIB = 1024 * 1024;
const MAX_TIME_COST = 64;
const MAX_PARALLELISM = 16;
const ARGON2_ID = 2;
const ARGON2_PATTERN = /^\$argon2id\$v=19\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{22,}$/;

export type Verification = {
  ok: boolean;
  /** The password matched and its hash uses another scheme or other parameters than the current ones. */
  needsRehash: boolean;
};

export interface PasswordHasher {
  readonly params: Argon2Params;
  hash(password: string): Promise<string>;
  /** Never throws for a malformed hash or absurd parameters: `ok: false`. */
  verify(password: string, stored: string): Promise<Verification>;
}

function parseArgon2(stored: string): Argon2Params | null {
  const m = ARGON2_PATTERN.exec(stored);
  if (!m) return null;
  const params = { memoryKiB: Number(m[1]), timeCost: Number(m[2]), parallelism: Number(m[3]) };
  if (params.memoryKiB < 8 * params.parallelism || params.memoryKiB > MAX_MEMORY_KIB) return null;
  if (params.timeCost < 1 || params.timeCost > MAX_TIME_COST || params.parallelism < 1 || params.parallelism > MAX_PARALLELISM) return null;
  return params;
}

const sameParams = (a: Argon2Params, b: Argon2Params) => a.memoryKiB === b.memoryKiB && a.timeCost === b.timeCost && a.parallelism === b.parallelism;

// NFC: the same password typed with composed or decomposed accents is the same password.
const normalized = (password: string) => password.normalize('NFC');

export function createPasswordHasher(params: Argon2Params = OWASP_ARGON2ID): PasswordHasher {
  const options = { algorithm: ARGON2_ID, memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: params.parallelism, outputLen: 32 } as const;
  return {
    params,
    hash: (password) => argon2Hash(normalized(password), options),
    async verify(password, stored) {
      if (isScryptHash(stored)) {
        const ok = await verifyScrypt(password, stored);
        return { ok, needsRehash: ok };
      }
      const storedParams = parseArgon2(stored);
      if (storedParams === null) return { ok: false, needsRehash: false };
      let ok: boolean;
      try {
        ok = await argon2Verify(stored, normalized(password));
      } catch {
        return { ok: false, needsRehash: false };
      }
      return { ok, needsRehash: ok && !sameParams(storedParams, params) };
    },
  };
}
