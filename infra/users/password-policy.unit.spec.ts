import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PASSWORD_MIN_LENGTH, loadCommonPasswords, passwordProblem } from './password-policy.js';

const account = { username: 'alice_smith', email: 'Alice.Smith@example.test' };

describe('password policy', () => {
  beforeAll(() => loadCommonPasswords());

  it('refuses what a black-box attack found accepted: 8 spaces and "password"', () => {
    expect(passwordProblem('        ', account)).toMatch(/at least 15 characters/);
    expect(passwordProblem(' '.repeat(40), account)).toBe('must not be only spaces');
    expect(passwordProblem('password', account, 8)).toMatch(/most commonly used/);
  });

  it('needs 15 characters by default, counted as code points after NFC', () => {
    expect(DEFAULT_PASSWORD_MIN_LENGTH).toBe(15);
    expect(passwordProblem('fourteen chars', account)).toMatch(/at least 15 characters/);
    expect(passwordProblem('fifteen chars!!', account)).toBeNull();
    // 15 emoji are 30 UTF-16 units but 15 characters; 14 decomposed é are 28 code points before NFC, 14 after.
    expect(passwordProblem('🐱🐶🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮🐷🐸🐵', account)).toBeNull();
    expect(passwordProblem(`${'e\u0301'.repeat(7)}abcdefg`, account)).toMatch(/at least 15/);
    expect(passwordProblem('x'.repeat(1025), account)).toMatch(/at most 1024/);
  });

  it('refuses NUL and lone surrogates (a lone surrogate would hash as U+FFFD, the same as another password)', () => {
    expect(passwordProblem('a long enough pass\u0000phrase', {})).toMatch(/NUL/);
    expect(passwordProblem('a long enough pass\ud800phrase', {})).toMatch(/lone surrogate/);
    expect(passwordProblem('a long enough pass\ufffdphrase', {})).toBeNull();
  });

  it('refuses repetitive passwords', () => {
    expect(passwordProblem('a'.repeat(20), account)).toMatch(/at least 4 different characters/);
    expect(passwordProblem('ab'.repeat(10), account)).toMatch(/at least 4 different characters/);
    expect(passwordProblem('abcd'.repeat(5), account)).toBeNull();
  });

  it('refuses common passwords ignoring case and spaces (with a lower minimum, where most of them are)', () => {
    expect(passwordProblem('Pass Word 123', account, 8)).toMatch(/most commonly used/);
    expect(passwordProblem('QWERTYUIOP', account, 8)).toMatch(/most commonly used/);
    expect(passwordProblem('passwordpassword', account)).toMatch(/most commonly used/);
    expect(passwordProblem('1qaz2wsx3edc4rfv', account)).toMatch(/most commonly used/);
    expect(passwordProblem('violet tram 47 lagoon', account)).toBeNull();
  });

  it('refuses the username, the e-mail and its local part', () => {
    const long = { username: 'a_long_user_name', email: 'someone.long@example.test' };
    expect(passwordProblem('A_Long_User_Name', long)).toMatch(/username or e-mail/);
    expect(passwordProblem('someone.long@example.test', long)).toMatch(/username or e-mail/);
    expect(passwordProblem('Someone.Long', long, 8)).toMatch(/username or e-mail/);
    expect(passwordProblem('a_long_user_name!', long)).toBeNull();
  });
});
