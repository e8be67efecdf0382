import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { Id, parseInstant } from '../../domain/fields.js';
import { analyzeQuery } from '../../domain/search/analysis.js';
import { EmptyQueryError, type MembershipInterval, type SearchAfter, type SearchIndex } from '../../domain/ports/search.js';
import type { SqlClient } from '../../domain/ports/sql.js';
import { buildSnippet } from './snippet.js';

/**
 * Search as a user: their membership intervals (the search projection's search_members) scope the
 * index query, hits get a highlighted snippet (snippet.ts), and pages continue with an opaque
 * cursor bound to the query it came from.
 */

export type UserSearch = {
  userId: string;
  text: string;
  conversationId?: string;
  senderId?: string;
  /** Inclusive, ISO 8601. */
  from?: string;
  /** Exclusive, ISO 8601. */
  until?: string;
  limit: number;
  cursor?: string;
};

export type SearchResultHit = {
  message_id: string;
  conversation_id: string;
  sender_id: string;
  sequence_number: number;
  created_at: string;
  snippet: string;
};

export type SearchResults = { hits: SearchResultHit[]; next_cursor: string | null };

/** A cursor that is not one of ours, or belongs to another query. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

const CursorBody = z.object({
  v: z.literal(1),
  q: z.string(),
  s: z.number().finite(),
  c: z.string().refine((c) => parseInstant(c) !== null),
  m: Id,
});

/** The key that signs search cursors, derived from the server's secret for this one purpose. */
export const searchCursorKey = (secret: string | Uint8Array): Buffer =>
  createHmac('sha256', secret).update('chat-backend search cursor v1').digest();

/** What a cursor is bound to: the same query and filters (not the limit, which may change between pages). */
function fingerprint(q: Omit<UserSearch, 'limit' | 'cursor'>): string {
  return createHash('sha256')
    .update(JSON.stringify([q.userId, analyzeQuery(q.text), q.conversationId ?? null, q.senderId ?? null, q.from ?? null, q.until ?? null]))
    .digest('base64url')
    .slice(0, 16);
}

const signatureOf = (key: Uint8Array, payload: string) => createHmac('sha256', key).update(payload).digest();

/**
 * `<payload>.<signature>`: the payload is the last hit's sort key and the query's fingerprint
 * (base64url JSON), the signature an HMAC-SHA256 of it with the server's cursor key. A client
 * can neither forge a cursor nor edit one (a score or date that the index cannot take, another
 * message id): the index is only ever asked to continue after a hit it returned.
 */
export function encodeCursor(after: SearchAfter, q: Omit<UserSearch, 'limit' | 'cursor'>, key: Uint8Array): string {
  const payload = Buffer.from(JSON.stringify({ v: 1, q: fingerprint(q), s: after.score, c: after.created_at, m: after.message_id })).toString('base64url');
  return `${payload}.${signatureOf(key, payload).toString('base64url')}`;
}

export function decodeCursor(cursor: string, q: Omit<UserSearch, 'limit' | 'cursor'>, key: Uint8Array): SearchAfter {
  const notOurs = () => new InvalidCursorError('cursor: not a cursor returned by this API');
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/.exec(cursor);
  if (match === null) throw notOurs();
  const [, payload = '', signature = ''] = match;
  const given = Buffer.from(signature, 'base64url');
  const expected = signatureOf(key, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw notOurs();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw notOurs();
  }
  // Signed by us, so well-formed; checked all the same, as everything read from outside is.
  const body = CursorBody.safeParse(parsed);
  if (!body.success) throw notOurs();
  if (body.data.q !== fingerprint(q)) throw new InvalidCursorError('cursor: belongs to another query (query and filters must stay the same between pages)');
  return { score: body.data.s, created_at: body.data.c, message_id: body.data.m };
}

export type SearchQueriesDeps = {
  db: SqlClient;
  index: SearchIndex;
  /** Signs the cursors (searchCursorKey of the server's secret; at least 32 bytes). */
  cursorKey: Uint8Array;
};

export function createSearchQueries(deps: SearchQueriesDeps): SearchQueries {
  if (deps.cursorKey.length < 32) throw new RangeError('search queries: the cursor key must be at least 32 bytes');
  async function scopeOf(userId: string, conversationId?: string): Promise<MembershipInterval[]> {
    const { rows } = await deps.db.query<{ conversation_id: string; from_version: number; to_version: number | null }>(
      conversationId === undefined
        ? 'SELECT conversation_id, from_version, to_version FROM search_members WHERE user_id = $1'
        : 'SELECT conversation_id, from_version, to_version FROM search_members WHERE user_id = $1 AND conversation_id = $2',
      conversationId === undefined ? [userId] : [userId, conversationId],
    );
    return rows.map((r) => ({ conversation_id: r.conversation_id, from_version: Number(r.from_version), to_version: r.to_version === null ? null : Number(r.to_version) }));
  }

  return {
    scopeOf,

    /** Throws EmptyQueryError (no searchable word) or InvalidCursorError. */
    async search(q: UserSearch): Promise<SearchResults> {
      const terms = analyzeQuery(q.text);
      if (terms.length === 0) throw new EmptyQueryError();
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, q, deps.cursorKey);
      const scope = await scopeOf(q.userId, q.conversationId);
      const page = await deps.index.search({
        text: q.text,
        scope,
        limit: q.limit,
        ...(q.senderId !== undefined ? { sender_id: q.senderId } : {}),
        ...(q.from !== undefined ? { from: q.from } : {}),
        ...(q.until !== undefined ? { until: q.until } : {}),
        ...(after !== undefined ? { after } : {}),
      });
      return {
        hits: page.hits.map((h) => ({
          message_id: h.message_id,
          conversation_id: h.conversation_id,
          sender_id: h.sender_id,
          sequence_number: h.sequence_number,
          created_at: h.created_at,
          snippet: buildSnippet(h.content, terms),
        })),
        next_cursor: page.next === null ? null : encodeCursor(page.next, q, deps.cursorKey),
      };
    },
  };
}

export interface SearchQueries {
  scopeOf(userId: string, conversationId?: string): Promise<MembershipInterval[]>;
  /** Throws EmptyQueryError (no searchable word) or InvalidCursorError. */
  search(q: UserSearch): Promise<SearchResults>;
}
