import { describe, expect, it } from 'vitest';
import { createPasswordHasher, OWASP_ARGON2ID } from './password.js';
import { hashScrypt } from './password-scrypt.js';

const cheap = { memoryKiB: 1024, timeCost: 1, parallelism: 1 };

describe('Argon2id password hashes', () => {
  it('writes Argon2id at the OWASP parameters by default (19 MiB, t=2, p=1), with a random salt', async () => {
    const hasher = createPasswordHasher();
    const a = await hasher.hash('correct horse battery');
    const b = await hasher.hash('correct horse battery');
    expect(a).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(a).not.toBe(b);
    expect(await hasher.verify('correct horse battery', a)).toEqual({ ok: true, needsRehash: false });
    expect(await hasher.verify('correct horse battery ', a)).toEqual({ ok: false, needsRehash: false });
    expect(OWASP_ARGON2ID).toEqual({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });
  });

  it('verifies legacy scrypt hashes and asks for a rehash only when the password matched', async () => {
    const hasher = createPasswordHasher(cheap);
    const legacy = await hashScrypt('old password here', { ln: 10, r: 8, p: 1 });
    expect(await hasher.verify('old password here', legacy)).toEqual({ ok: true, needsRehash: true });
    expect(await hasher.verify('wrong password here', legacy)).toEqual({ ok: false, needsRehash: false });
  });

  it('asks for a rehash of Argon2id hashes made with other parameters', async () => {
    const weak = await createPasswordHasher(cheap).hash('some password');
    const current = createPasswordHasher({ memoryKiB: 2048, timeCost: 2, parallelism: 1 });
    expect(await current.verify('some password', weak)).toEqual({ ok: true, needsRehash: true });
    expect(await current.verify('other password', weak)).toEqual({ ok: false, needsRehash: false });
    expect(await current.verify('some password', await current.hash('some password'))).toEqual({ ok: true, needsRehash: false });
  });

  it('treats composed and decomposed accents as the same password', async () => {
    const hasher = createPasswordHasher(cheap);
    expect((await hasher.verify('cafe\u0301', await hasher.hash('caf\u00e9'))).ok).toBe(true);
  });

  it('refuses malformed hashes, other Argon2 variants and absurd parameters instead of throwing', async () => {
    const hasher = createPasswordHasher(cheap);
    const good = await hasher.hash('pw');
    const refused = { ok: false, needsRehash: false };
    expect(await hasher.verify('pw', 'plaintext')).toEqual(refused);
    expect(await hasher.verify('pw', good.replace('$argon2id$', '$argon2i$'))).toEqual(refused);
    expect(await hasher.verify('pw', good.replace('m=1024', 'm=99999999'))).toEqual(refused);
    expect(await hasher.verify('pw', good.replace('t=1', 't=1000'))).toEqual(refused);
    expect(await hasher.verify('pw', good.replace(/\$[^$]+$/, '$AAAA'))).toEqual(refused);
  });

  it('hashes off the event loop: timers keep firing while hashes run', async () => {
    const hasher = createPasswordHasher(OWASP_ARGON2ID);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await Promise.all([hasher.hash('a password here'), hasher.hash('b password here')]);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
  });
});
