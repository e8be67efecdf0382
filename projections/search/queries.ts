import { createHash } from 'node:crypto';
import { z } from 'zod';
import { analyzeQuery } from '../../domain/search/analysis.js';
import { EmptyQueryError, type MembershipInterval, type SearchAfter, type SearchIndex } from '../../infra/search/port.js';
import type { SqlClient } from '../../infra/sql/port.js';
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

const CursorBody = z.object({ v: z.literal(1), q: z.string(), s: z.number().finite(), c: z.string().min(1), m: z.string().min(1) });

/** What a cursor is bound to: the same query and filters (not the limit, which may change between pages). */
function fingerprint(q: Omit<UserSearch, 'limit' | 'cursor'>): string {
  return createHash('sha256')
    .update(JSON.stringify([q.userId, analyzeQuery(q.text), q.conversationId ?? null, q.senderId ?? null, q.from ?? null, q.until ?? null]))
    .digest('base64url')
    .slice(0, 16);
}

export function encodeCursor(after: SearchAfter, q: Omit<UserSearch, 'limit' | 'cursor'>): string {
  return Buffer.from(JSON.stringify({ v: 1, q: fingerprint(q), s: after.score, c: after.created_at, m: after.message_id })).toString('base64url');
}

export function decodeCursor(cursor: string, q: Omit<UserSearch, 'limit' | 'cursor'>): SearchAfter {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('cursor: not a cursor returned by this API');
  }
  const body = CursorBody.safeParse(parsed);
  if (!body.success || Number.isNaN(Date.parse(body.data.c))) throw new InvalidCursorError('cursor: not a cursor returned by this API');
  if (body.data.q !== fingerprint(q)) throw new InvalidCursorError('cursor: belongs to another query (query and filters must stay the same between pages)');
  return { score: body.data.s, created_at: body.data.c, message_id: body.data.m };
}

export function createSearchQueries(deps: { db: SqlClient; index: SearchIndex }) {
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
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, q);
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
        next_cursor: page.next === null ? null : encodeCursor(page.next, q),
      };
    },
  };
}

export type SearchQueries = ReturnType<typeof createSearchQueries>;
