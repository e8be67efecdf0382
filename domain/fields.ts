import { z } from 'zod';

/**
 * The rules for values that come from clients: one place for every limit, used by both edges (the
 * REST route schemas, gateways/api; the WebSocket frame schemas, gateways/protocol) and by
 * the decider for the rules that are the domain's (reactions). Pure: no I/O, imports only zod.
 *
 * Everything a client sends may reach SQL, the event store or the search index, so a value is
 * refused at the edge, with the field named, unless each of those can hold it:
 * - text is well-formed UTF-16 (no lone surrogate: PostgreSQL and jsonb cannot store one, and
 *   UTF-8 encoders silently turn it into U+FFFD), holds no NUL (text and json columns refuse it)
 *   and no Unicode noncharacter (U+FFFE, U+FFFF, U+FDD0..U+FDEF, ...: not for interchange);
 * - a one-line value (ids, names, file names) holds no control character either;
 * - numbers are integers in the range of the column that keeps them;
 * - dates lie between the years 1 and 9999, which PostgreSQL, JavaScript and ISO 8601 all read.
 *
 * Lengths count code points, as zod and so the event schemas (events.ts) do: whatever passes
 * here is an event that can be read back.
 */

/** A UUID as this server writes its ids (user, session, device, event): canonical 8-4-4-4-12, lowercase. */
export const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The same form in either case (what a client or a caller of the store may send). */
export const UUID_ANY_CASE = new RegExp(CANONICAL_UUID.source, 'i');

/** The store keeps stream versions (a message's sequence_number) as 32-bit integers. */
export const MAX_VERSION = 2_147_483_647;
/** Ids of users, conversations, messages, media and devices. */
export const MAX_ID_CHARS = 64;
export const MAX_CLIENT_MESSAGE_ID_CHARS = 128;
export const MAX_GROUP_NAME_CHARS = 100;
export const MAX_DESCRIPTION_CHARS = 2048;
/** As sent; the media service keeps at most MAX_STORED_FILE_NAME_CHARS of it, without directories or controls. */
export const MAX_FILE_NAME_CHARS = 1024;
/** A file name as stored with its media and named in events and push notifications. */
export const MAX_STORED_FILE_NAME_CHARS = 255;
/** A media type (`image/png`) as announced and stored. */
export const MAX_MIME_TYPE_CHARS = 255;
/** The longest emoji a reaction may be (RGI family sequences are about a dozen code units). */
export const MAX_EMOJI_CHARS = 32;
/** Distinct emoji one user may have on one message at a time. */
export const MAX_REACTIONS_PER_USER_AND_MESSAGE = 20;

/** What free text may not hold (NUL, lone surrogates, noncharacters), and a one-line value (controls too). */
const TEXT_FORBIDDEN = '\\0\\p{Cs}\\p{Noncharacter_Code_Point}';
const LINE_FORBIDDEN = '\\p{Cc}\\p{Cs}\\p{Noncharacter_Code_Point}';
const NOT_IN_TEXT = new RegExp(`[${TEXT_FORBIDDEN}]`, 'u');
const NOT_IN_LINE = new RegExp(`[${LINE_FORBIDDEN}]`, 'u');

const hex = (code: number) => `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;

function describeChar(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  if (code === 0) return 'contains U+0000 (NUL), which is not allowed';
  if (code >= 0xd800 && code <= 0xdfff) return `contains a lone surrogate (${hex(code)}): not well-formed UTF-16`;
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return `contains the control character ${hex(code)}, which is not allowed here`;
  return `contains the noncharacter ${hex(code)}, which is not allowed`;
}

/** Why `s` cannot be stored as free text (a message, a caption, a description), or null when it can. */
export function textFault(s: string): string | null {
  const bad = NOT_IN_TEXT.exec(s);
  return bad === null ? null : describeChar(bad[0]);
}

/** Why `s` cannot be a one-line value (an id, a name, a file name), or null when it can. */
export function lineFault(s: string): string | null {
  const bad = NOT_IN_LINE.exec(s);
  return bad === null ? null : describeChar(bad[0]);
}

// The same rules as whole-string patterns: a zod regex check costs one test and allocates nothing
// for a good value (a refinement makes a context per call); the message comes from the fault.
const TEXT_ONLY = new RegExp(`^[^${TEXT_FORBIDDEN}]*$`, 'u');
const LINE_ONLY = new RegExp(`^[^${LINE_FORBIDDEN}]*$`, 'u');
const said = (fault: (s: string) => string | null) => ({ error: (issue: { input?: unknown }) => fault(String(issue.input)) ?? 'not allowed here' });

/** Free text: anything but NUL, lone surrogates and noncharacters (newlines and tabs are fine). */
export const text = () => z.string().regex(TEXT_ONLY, said(textFault));

/** One line of `min`..`max` characters (code points), without control characters. */
export const line = (min: number, max: number) => z.string().min(min).max(max).regex(LINE_ONLY, said(lineFault));

export const Id = line(1, MAX_ID_CHARS);
export const ClientMessageId = line(1, MAX_CLIENT_MESSAGE_ID_CHARS);
/** The installation a watermark belongs to (Hello.device_id, the REST X-Device-Id header). */
export const DeviceId = line(1, MAX_ID_CHARS);
export const GroupName = z.string().trim().min(1).max(MAX_GROUP_NAME_CHARS).regex(LINE_ONLY, said(lineFault));
export const Description = text().max(MAX_DESCRIPTION_CHARS);
/** Free text rather than one line: the media service strips control characters from it. */
export const FileName = text().min(1).max(MAX_FILE_NAME_CHARS);

/** A username: 3..32 of ASCII letters, digits, `_`, `.` and `-` (what logins, mentions and URLs take as they are). */
export const MIN_USERNAME_CHARS = 3;
export const MAX_USERNAME_CHARS = 32;
export const Username = z
  .string()
  .min(MIN_USERNAME_CHARS)
  .max(MAX_USERNAME_CHARS)
  .regex(/^[a-zA-Z0-9_.-]+$/, 'use only letters, digits, "_", "." and "-"');

/** A stream version a client names (a sequence_number, a watermark): 1..MAX_VERSION. */
export const Version = z.number().int().min(1).max(MAX_VERSION);
/** A sync cursor: 0 (nothing seen yet) .. MAX_VERSION. */
export const CursorVersion = z.number().int().min(0).max(MAX_VERSION);

// One RGI emoji (Unicode's recommended-for-general-interchange set: what emoji keyboards send,
// skin tones, flags and ZWJ sequences included). The `v` flag is V8 11.2+ (Node 20); built from a
// string because TypeScript's ES2022 target does not know the flag.
// biome-ignore lint/complexity/useRegexLiterals: the literal does not compile for the ES2022 target (above)
const ONE_EMOJI = new RegExp('^\\p{RGI_Emoji}$', 'v');

/** Whether `s` is one emoji a reaction may be. */
export const isReactionEmoji = (s: string) => s.length <= MAX_EMOJI_CHARS && ONE_EMOJI.test(s);

export const Emoji = z.string().refine(isReactionEmoji, 'expected one emoji (a fully-qualified RGI emoji such as 👍 or ❤️)');

/** The earliest and latest instants a date field may name (both inclusive). */
export const MIN_INSTANT_MS = Date.parse('0001-01-01T00:00:00.000Z');
export const MAX_INSTANT_MS = Date.parse('9999-12-31T23:59:59.999Z');

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

function realDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  return day <= DAYS_IN_MONTH[month - 1]! + (month === 2 && isLeap(year) ? 1 : 0);
}

/**
 * An ISO 8601 date (`2026-01-31`, midnight UTC) or date-time with an offset
 * (`2026-01-31T18:00:00+01:00`) as Unix milliseconds, or null when it is not one, names a day that
 * does not exist, or lies outside MIN_INSTANT_MS..MAX_INSTANT_MS.
 */
export function parseInstant(s: string): { ms: number; dateOnly: boolean } | null {
  const date = DATE_ONLY.exec(s);
  const dateTime = date === null ? DATE_TIME.exec(s) : null;
  const parts = date ?? dateTime;
  if (parts === null) return null;
  const [year, month, day] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (!realDate(year, month, day)) return null;
  if (dateTime !== null) {
    const [hour, minute, second] = [Number(dateTime[4]), Number(dateTime[5]), Number(dateTime[6] ?? 0)];
    const [offsetHours, offsetMinutes] = [Number(dateTime[7] ?? 0), Number(dateTime[8] ?? 0)];
    if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return null;
  }
  const ms = Date.parse(date === null ? s : `${s}T00:00:00Z`);
  if (!Number.isFinite(ms) || ms < MIN_INSTANT_MS || ms > MAX_INSTANT_MS) return null;
  return { ms, dateOnly: date !== null };
}
