import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { EmptyQueryError } from '../../../domain/ports/search.js';
import { InvalidCursorError, type SearchResults, type UserSearch } from '../../../projections/search/queries.js';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { Id, Limit } from '../schemas.js';
import { MAX_INSTANT_MS, parseInstant, text } from '../../../domain/fields.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * GET /api/v1/conversations/:id/search (members only: 403 otherwise) and GET /api/v1/search
 * (every conversation of the caller). A caller finds the messages sent while they were a member
 * (projections/search/projection.ts). Hits come by relevance, then newest first; `next_cursor`
 * continues the same query. Snippets are HTML-escaped text with <mark>…</mark> around matches.
 */

const MAX_QUERY_CHARS = 500;
/** The cursors this API hands out are about 200 characters (projections/search/queries.ts). */
const MAX_CURSOR_CHARS = 512;

const QueryText = text()
  .trim()
  .min(1, 'must not be empty')
  .max(MAX_QUERY_CHARS, `at most ${MAX_QUERY_CHARS} characters`);

/** An ISO 8601 date (YYYY-MM-DD, UTC) or date-time with an offset, from year 1 to 9999. */
const Instant = z.string().transform((raw, ctx) => {
  const instant = parseInstant(raw);
  if (instant === null) {
    ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 date (2026-01-31) or date-time with offset (2026-01-31T18:00:00Z), from year 0001 to 9999' });
    return z.NEVER;
  }
  return instant;
});

const Cursor = z.string().min(1).max(MAX_CURSOR_CHARS);

const ConversationSearchQuery = z.object({ query: QueryText, limit: Limit(20, 100), cursor: Cursor.optional() });

const GlobalSearchQuery = ConversationSearchQuery.extend({
  sender: Id.optional(),
  conversation_id: Id.optional(),
  from: Instant.optional(),
  to: Instant.optional(),
});

const SearchHitBody = z.object({
  message_id: z.string(),
  conversation_id: z.string(),
  sender_id: z.string(),
  sequence_number: z.number().int(),
  created_at: z.string(),
  snippet: z.string(),
});
const SearchResponse = z.object({ hits: z.array(SearchHitBody), next_cursor: z.string().nullable() });

type Instant = { ms: number; dateOnly: boolean };

/**
 * `from` is inclusive from its first millisecond; `to` is inclusive up to its last (a date: the
 * whole day, UTC). A `to` at the end of year 9999 sets no upper bound (nothing is later).
 */
export function dateRange(from: Instant | undefined, to: Instant | undefined): { from?: string; until?: string } {
  const start = from?.ms;
  const end = to === undefined ? undefined : to.ms + (to.dateOnly ? 86_400_000 : 1);
  if (start !== undefined && end !== undefined && start >= end) throw new HttpError('validation_error', 'from: must not be after to');
  return {
    ...(start !== undefined ? { from: new Date(start).toISOString() } : {}),
    ...(end !== undefined && end <= MAX_INSTANT_MS ? { until: new Date(end).toISOString() } : {}),
  };
}

export function searchRoutes(deps: RouteDeps): FastifyPluginAsync {
  async function run(q: UserSearch): Promise<SearchResults> {
    try {
      return await deps.search.search(q);
    } catch (error) {
      if (error instanceof EmptyQueryError) throw new HttpError('validation_error', 'query: contains no searchable word (only spaces, punctuation or symbols)');
      if (error instanceof InvalidCursorError) throw new HttpError('invalid_cursor', error.message);
      throw error;
    }
  }

  return async (scope) => {
    const app = scope.withTypeProvider<ZodTypeProvider>();

    app.get(
      '/conversations/:id/search',
      { schema: { params: z.object({ id: Id }), querystring: ConversationSearchQuery, response: { 200: SearchResponse } } },
      async (request) => {
        const me = caller(request);
        await deps.commands.access(me.userId, request.params.id);
        const { query, limit, cursor } = request.query;
        return run({ userId: me.userId, text: query, conversationId: request.params.id, limit, ...(cursor !== undefined ? { cursor } : {}) });
      },
    );

    app.get('/search', { schema: { querystring: GlobalSearchQuery, response: { 200: SearchResponse } } }, async (request) => {
      const me = caller(request);
      const { query, limit, cursor, sender, conversation_id, from, to } = request.query;
      return run({
        userId: me.userId,
        text: query,
        limit,
        ...dateRange(from, to),
        ...(sender !== undefined ? { senderId: sender } : {}),
        ...(conversation_id !== undefined ? { conversationId: conversation_id } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
    });
  };
}
