/**
 * What a new password must be (registration and password change). Following NIST SP 800-63B-4
 * (and OWASP ASVS 5.0, which strongly recommends the same length): length is what counts, no
 * composition rules; a password that is the only factor has at least 15 characters; it is checked
 * against a list of commonly used passwords and against the account's own identifiers.
 *
 * - at least `minLength` characters (Unicode code points after NFC, as NIST counts them) and at
 *   most MAX_PASSWORD_LENGTH;
 * - not only whitespace, and at least MIN_DISTINCT_CHARACTERS different characters (no "aaaa…");
 * - not one of the 49,233 common passwords of @zxcvbn-ts/language-common, ignoring case and
 *   whitespace ("Pass Word 123" is "password123");
 * - not the username, the e-mail address or its local part (ignoring case and whitespace);
 * - well-formed text without NUL (domain/fields.ts).
 */

import { textFault } from '../../domain/fields.js';

export const DEFAULT_PASSWORD_MIN_LENGTH = 15;
export const MAX_PASSWORD_LENGTH = 1024;
export const MIN_DISTINCT_CHARACTERS = 4;

let common: ReadonlySet<string> | undefined;

/**
 * Loads the list (about 50,000 strings, 3.7 MB of heap): the processes that check new passwords
 * (the api role) call it once at start; the others never load it.
 */
export async function loadCommonPasswords(): Promise<void> {
  if (common !== undefined) return;
  const { dictionary } = await import('@zxcvbn-ts/language-common');
  common ??= new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
}

function commonPasswords(): ReadonlySet<string> {
  if (common === undefined) throw new Error('password policy: loadCommonPasswords() was not called');
  return common;
}

const squeeze = (s: string) => s.normalize('NFC').toLowerCase().replace(/\s+/gu, '');

/** Why `password` is refused (a sentence to follow "password: "), or null when it is acceptable. */
export function passwordProblem(password: string, account: { username?: string; email?: string }, minLength = DEFAULT_PASSWORD_MIN_LENGTH): string | null {
  // A lone surrogate would be hashed as U+FFFD (two passwords, one hash); NUL cuts some clients' strings.
  const fault = textFault(password);
  if (fault !== null) return fault;
  const characters = [...password.normalize('NFC')];
  if (characters.length < minLength) return `must be at least ${minLength} characters long (a few words make a good one)`;
  if (characters.length > MAX_PASSWORD_LENGTH) return `must be at most ${MAX_PASSWORD_LENGTH} characters long`;
  if (password.trim() === '') return 'must not be only spaces';
  if (new Set(characters).size < MIN_DISTINCT_CHARACTERS) return `must use at least ${MIN_DISTINCT_CHARACTERS} different characters`;
  const squeezed = squeeze(password);
  if (commonPasswords().has(squeezed)) return 'is one of the most commonly used passwords; choose another';
  const identifiers = [account.username, account.email, account.email?.split('@')[0]].filter((s): s is string => s !== undefined && s !== '').map(squeeze);
  if (identifiers.includes(squeezed)) return 'must not be your username or e-mail address';
  return null;
}
