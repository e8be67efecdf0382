import { describe, expect, it } from 'vitest';
import {
  ClientMessageId,
  CursorVersion,
  Description,
  GroupName,
  Id,
  isReactionEmoji,
  lineFault,
  MAX_INSTANT_MS,
  MAX_VERSION,
  MIN_INSTANT_MS,
  parseInstant,
  textFault,
  Version,
} from './fields.js';

describe('field rules (domain/fields.ts)', () => {
  describe('text', () => {
    it.each(['hello', 'line one\nline two\ttabbed', 'Café 東京 😀 👨‍👩‍👧', '', '\u200b zero width', '\ufffd replacement character'])(
      'takes %j',
      (s) => expect(textFault(s)).toBeNull(),
    );

    it.each([
      ['a\u0000b', 'U+0000 (NUL)'],
      ['lone high \ud800 surrogate', 'lone surrogate (U+D800)'],
      ['\udc00 lone low surrogate first', 'lone surrogate (U+DC00)'],
      ['pair reversed \udc00\ud800', 'lone surrogate (U+DC00)'],
      ['\uffff', 'noncharacter U+FFFF'],
      ['\ufffe', 'noncharacter U+FFFE'],
      ['\ufdd0', 'noncharacter U+FDD0'],
      ['\u{1fffe}', 'noncharacter U+1FFFE'],
    ])('refuses %j, naming %s', (s, named) => {
      expect(textFault(s)).toContain(named);
    });
  });

  describe('one line', () => {
    it.each([['tab\there', 'U+0009'], ['new\nline', 'U+000A'], ['\u007f', 'U+007F'], ['\u0085', 'U+0085'], ['\u0000', 'U+0000']])(
      'refuses a control character: %j (%s)',
      (s, named) => expect(lineFault(s)).toContain(named),
    );

    it('takes spaces and any script', () => expect(lineFault('Équipe 東京 😀')).toBeNull());
  });

  describe('schemas', () => {
    it('ids are 1..64 characters of one line', () => {
      expect(Id.safeParse('x'.repeat(64)).success).toBe(true);
      expect(Id.safeParse('x'.repeat(65)).success).toBe(false);
      expect(Id.safeParse('').success).toBe(false);
      expect(Id.safeParse('a\u0000b').success).toBe(false);
    });

    it('client message ids are 1..128 characters', () => {
      expect(ClientMessageId.safeParse('x'.repeat(128)).success).toBe(true);
      expect(ClientMessageId.safeParse('x'.repeat(129)).success).toBe(false);
    });

    it('a group name is trimmed, 1..100 characters, one line', () => {
      expect(GroupName.parse('  team  ')).toBe('team');
      expect(GroupName.safeParse('   ').success).toBe(false);
      expect(GroupName.safeParse('a\nb').success).toBe(false);
      expect(GroupName.safeParse('😀'.repeat(100)).success).toBe(true);
      expect(GroupName.safeParse('😀'.repeat(101)).success).toBe(false);
    });

    it('a description may span lines but not hold NUL', () => {
      expect(Description.safeParse('one\ntwo').success).toBe(true);
      expect(Description.safeParse('one\u0000two').success).toBe(false);
    });

    it(`versions are integers from 1 (a cursor: 0) to ${MAX_VERSION}, what the store's integer column holds`, () => {
      expect(Version.safeParse(MAX_VERSION).success).toBe(true);
      expect(Version.safeParse(MAX_VERSION + 1).success).toBe(false);
      expect(Version.safeParse(0).success).toBe(false);
      expect(Version.safeParse(1.5).success).toBe(false);
      expect(Version.safeParse(Number.NaN).success).toBe(false);
      expect(Version.safeParse(Number.POSITIVE_INFINITY).success).toBe(false);
      expect(CursorVersion.safeParse(0).success).toBe(true);
      expect(CursorVersion.safeParse(-1).success).toBe(false);
      expect(CursorVersion.safeParse(2 ** 40).success).toBe(false);
    });
  });

  describe('reaction emoji', () => {
    it.each(['👍', '❤️', '👍🏽', '🇯🇵', '#️⃣', '👩‍💻', '👨‍👩‍👧‍👦', '🏳️‍🌈'])('one emoji: %s', (s) => expect(isReactionEmoji(s)).toBe(true));
    it.each(['', 'a', '1', '<svg/onload=alert(1)>', '👍👍', '👍 ', '❤', '©', '\u0000', '\ud83d'])('not one emoji: %j', (s) => expect(isReactionEmoji(s)).toBe(false));
  });

  describe('instants', () => {
    it('reads a date as midnight UTC and a date-time with its offset', () => {
      expect(parseInstant('2026-01-31')).toEqual({ ms: Date.parse('2026-01-31T00:00:00Z'), dateOnly: true });
      expect(parseInstant('2026-01-31T18:00:00+01:00')).toEqual({ ms: Date.parse('2026-01-31T17:00:00Z'), dateOnly: false });
      expect(parseInstant('2026-01-31T18:00Z')?.ms).toBe(Date.parse('2026-01-31T18:00:00Z'));
      expect(parseInstant('2024-02-29')).not.toBeNull();
    });

    it.each([
      '0000-01-01', // year 0: PostgreSQL has none
      '0001-01-01T00:30:00+01:00', // before year 1 in UTC
      '10000-01-01',
      '2026-02-30', // JavaScript would read this as March 2
      '2023-02-29',
      '2026-13-01',
      '2026-01-31T24:00:00Z',
      '2026-01-31T12:60:00Z',
      '2026-01-31T12:00:00', // no offset: which time zone?
      '2026-1-31',
      '1e400',
      'NaN',
      '',
    ])('refuses %j', (s) => expect(parseInstant(s)).toBeNull());

    it('takes the first and the last instant of years 1 to 9999', () => {
      expect(parseInstant('0001-01-01')?.ms).toBe(MIN_INSTANT_MS);
      expect(parseInstant('9999-12-31T23:59:59.999Z')?.ms).toBe(MAX_INSTANT_MS);
    });
  });
});
