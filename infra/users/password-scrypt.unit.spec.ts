import { describe, expect, it } from 'vitest';
import { hashScrypt as hashPassword, verifyScrypt as verifyPassword } from './password-scrypt.js';

const cheap = { ln: 10, r: 8, p: 1 };

describe('legacy scrypt password hashes', () => {
  it('stores parameters and a random salt, and verifies only the right password', async () => {
    const a = await hashPassword('correct horse', cheap);
    const b = await hashPassword('correct horse', cheap);
    expect(a).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct horse ', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
  });

  it('writes the legacy cost by default, and verifies hashes of any stored cost', async () => {
    const strong = await hashPassword('pw');
    expect(strong).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$/);
    expect(await verifyPassword('pw', strong)).toBe(true);
  });

  it('treats composed and decomposed accents as the same password', async () => {
    const hash = await hashPassword('caf\u00e9', cheap);
    expect(await verifyPassword('cafe\u0301', hash)).toBe(true);
  });

  it('refuses malformed hashes and absurd parameters instead of throwing', async () => {
    const good = await hashPassword('pw', cheap);
    expect(await verifyPassword('pw', 'plaintext')).toBe(false);
    expect(await verifyPassword('pw', good.replace('ln=10', 'ln=40'))).toBe(false);
    expect(await verifyPassword('pw', good.replace(/\$[^$]+$/, '$AAAA'))).toBe(false);
  });
});
