import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { EmptyQueryError } from '../../../infra/search/port.js';
import { InvalidCursorError, type SearchResults, type UserSearch } from '../../../projections/search/queries.js';
import { caller } from '../auth.js';
import type { RouteDeps } from '../deps.js';
import { HttpError } from '../errors.js';
import { Id, Limit } from '../schemas.js';
import type { ZodTypeProvider } from '../zod.js';

/**
 * GET /api/v1/conversations/:id/search (members only: 403 otherwise) and GET /api/v1/search
 * (every conversation of the caller). A caller finds the messages sent while they were a member
 * (projections/search/projection.ts). Hits come by relevance, then newest first; `next_cursor`
 * continues the same query. Snippets are HTML-escaped text with <mark>…</mark> around matches.
 */

const MAX_QUERY_CHARS = 500;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

const QueryText = z
  .string({ error: 'Required' })
  .trim()
  .min(1, 'must not be empty')
  .max(MAX_QUERY_CHARS, `at most ${MAX_QUERY_CHARS} characters`);

/** An ISO 8601 date (YYYY-MM-DD, UTC) or date-time with an offset. */
const Instant = z
  .string()
  .refine((s) => (DATE_ONLY.test(s) || DATE_TIME.test(s)) && !Number.isNaN(Date.parse(DATE_ONLY.test(s) ? `${s}T00:00:00Z` : s)), {
    message: 'expected an ISO 8601 date (2026-01-31) or date-time with offset (2026-01-31T18:00:00Z)',
  });

const ConversationSearchQuery = z.object({ query: QueryText, limit: Limit(20, 100), cursor: z.string().min(1).max(512).optional() });

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

/** `from` is inclusive from its first millisecond; `to` is inclusive up to its last (a date: the whole day, UTC). */
export function dateRange(from: string | undefined, to: string | undefined): { from?: string; until?: string } {
  const start = from === undefined ? undefined : Date.parse(DATE_ONLY.test(from) ? `${from}T00:00:00Z` : from);
  const end = to === undefined ? undefined : DATE_ONLY.test(to) ? Date.parse(`${to}T00:00:00Z`) + 86_400_000 : Date.parse(to) + 1;
  if (start !== undefined && end !== undefined && start >= end) throw new HttpError('validation_error', 'from: must not be after to');
  return {
    ...(start !== undefined ? { from: new Date(start).toISOString() } : {}),
    ...(end !== undefined ? { until: new Date(end).toISOString() } : {}),
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
