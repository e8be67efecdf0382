import { Client, errors, type estypes } from '@elastic/elasticsearch';
import { z } from 'zod';
import { analyzeQuery } from '../../domain/search/analysis.js';
import { EmptyQueryError, type MembershipInterval, type SearchHit, type SearchIndex, type SearchPage, type SearchQuery, type SearchWrite } from '../../domain/ports/search.js';

/**
 * SearchIndex over Elasticsearch (8.x / 9.x, client @elastic/elasticsearch 9).
 *
 * - One index of messages (`index`), document id = message_id: a replayed batch overwrites the
 *   same documents, so at-least-once delivery from the projector has an exactly-once effect.
 * - Checkpoints in `<index>-checkpoints`, one document per event-store shard, moved with a
 *   max() script in the same bulk request as the batch's documents.
 * - Text analysis `chat_text`, built-in parts only (no plugin needed): the `standard` tokenizer
 *   (Unicode word boundaries, UAX #29, for every script), `cjk_width` (full / half-width forms),
 *   `lowercase`, `asciifolding` (accents: "café" finds "cafe") and `cjk_bigram` (Han, Hiragana,
 *   Katakana and Hangul indexed as overlapping pairs, as they are written without spaces). No
 *   stemming: conversations mix languages.
 * - Writes do not wait for a refresh: the index refreshes every 500 ms, so a message is searchable
 *   within 1 s of the projector's batch.
 */

export type ElasticsearchSearchIndexDeps = {
  client: Client;
  /** Name of the messages index; checkpoints go to `${index}-checkpoints`. */
  index: string;
  /** Refresh interval of the index (default 500ms: searchable within 1 s). */
  refreshInterval?: string;
};

export const CHAT_TEXT_ANALYSIS: estypes.IndicesIndexSettingsAnalysis = {
  analyzer: {
    chat_text: {
      type: 'custom',
      tokenizer: 'standard',
      filter: ['cjk_width', 'lowercase', 'asciifolding', 'cjk_bigram'],
    },
  },
};

export const MESSAGE_MAPPING = {
  dynamic: 'strict',
  properties: {
    message_id: { type: 'keyword' },
    conversation_id: { type: 'keyword' },
    sequence_number: { type: 'integer' },
    sender_id: { type: 'keyword' },
    created_at: { type: 'date' },
    content: { type: 'text', analyzer: 'chat_text' },
  },
} as const;

const CHECKPOINT_MAPPING = { dynamic: 'strict', properties: { shard: { type: 'integer' }, position: { type: 'long' } } } as const;

const SOURCE_FIELDS = ['message_id', 'conversation_id', 'sequence_number', 'sender_id', 'created_at', 'content'];

/** What a hit must hold: checked, not cast (it comes from another service). */
const HitSource = z.object({
  message_id: z.string(),
  conversation_id: z.string(),
  sequence_number: z.number().int(),
  sender_id: z.string(),
  created_at: z.string(),
  content: z.string(),
});
const Hit = z.object({ _score: z.number().nullable().optional(), _source: HitSource, sort: z.array(z.union([z.number(), z.string()])) });

/** The filter that keeps a hit inside the caller's membership intervals. */
export function scopeFilter(scope: readonly MembershipInterval[]): estypes.QueryDslQueryContainer {
  // Whole memberships (the common case) are one terms clause; partial ones a clause each.
  const whole = scope.filter((s) => s.from_version <= 1 && s.to_version === null).map((s) => s.conversation_id);
  const partial = scope.filter((s) => !(s.from_version <= 1 && s.to_version === null));
  const should: estypes.QueryDslQueryContainer[] = [];
  if (whole.length > 0) should.push({ terms: { conversation_id: [...new Set(whole)] } });
  for (const s of partial) {
    should.push({
      bool: {
        filter: [
          { term: { conversation_id: s.conversation_id } },
          { range: { sequence_number: s.to_version === null ? { gte: s.from_version } : { gte: s.from_version, lt: s.to_version } } },
        ],
      },
    });
  }
  return { bool: { should, minimum_should_match: 1 } };
}

/** The search request of a query (without the index name). */
export function searchRequest(query: SearchQuery): Omit<estypes.SearchRequest, 'index'> {
  const filter: estypes.QueryDslQueryContainer[] = [scopeFilter(query.scope)];
  if (query.sender_id !== undefined) filter.push({ term: { sender_id: query.sender_id } });
  if (query.from !== undefined || query.until !== undefined) {
    filter.push({ range: { created_at: { ...(query.from !== undefined ? { gte: query.from } : {}), ...(query.until !== undefined ? { lt: query.until } : {}) } } });
  }
  return {
    size: query.limit + 1,
    track_total_hits: false,
    _source: SOURCE_FIELDS,
    query: { bool: { must: [{ match: { content: { query: query.text, operator: 'and' as const } } }], filter } },
    sort: [{ _score: { order: 'desc' } }, { created_at: { order: 'desc' } }, { message_id: { order: 'desc' } }] satisfies estypes.SortCombinations[],
    ...(query.after !== undefined ? { search_after: [query.after.score, Date.parse(query.after.created_at), query.after.message_id] } : {}),
  };
}

/** The bulk operations of a batch: documents by message id, removals, the shard's checkpoint (max). */
export function bulkOperations(batch: SearchWrite, index: string): estypes.BulkRequest['operations'] {
  const operations: unknown[] = [];
  for (const d of batch.upserts) {
    operations.push({ index: { _index: index, _id: d.message_id } });
    operations.push({
      message_id: d.message_id,
      conversation_id: d.conversation_id,
      sequence_number: d.sequence_number,
      sender_id: d.sender_id,
      created_at: d.created_at,
      content: d.content,
    });
  }
  for (const id of batch.removals) operations.push({ delete: { _index: index, _id: id } });
  const { shard, position } = batch.checkpoint;
  operations.push({ update: { _index: `${index}-checkpoints`, _id: `shard-${shard}` } });
  operations.push({
    script: { source: 'if (ctx._source.position < params.position) { ctx._source.position = params.position } else { ctx.op = "noop" }', params: { position } },
    upsert: { shard, position },
  });
  return operations as estypes.BulkRequest['operations'];
}

/** Throws the first failed item of a bulk response (a delete of a missing document is not a failure). */
export function checkBulk(response: estypes.BulkResponse): void {
  if (!response.errors) return;
  for (const item of response.items) {
    for (const [action, result] of Object.entries(item)) {
      if (!result || result.error === undefined || result.error === null) continue;
      if (action === 'delete' && result.status === 404) continue;
      throw new Error(`elasticsearch bulk ${action} ${result._id ?? ''} failed (${result.status}): ${result.error.type}: ${result.error.reason ?? ''}`);
    }
  }
}

export function parseSearchResponse(response: estypes.SearchResponse<unknown>, limit: number): SearchPage {
  const raw = response.hits.hits;
  const hits: SearchHit[] = raw.slice(0, limit).map((h) => {
    const hit = Hit.parse(h);
    return { ...hit._source, created_at: new Date(hit._source.created_at).toISOString(), score: hit._score ?? Number(hit.sort[0]) };
  });
  const last = hits[hits.length - 1];
  return { hits, next: raw.length > limit && last ? { score: last.score, created_at: last.created_at, message_id: last.message_id } : null };
}

export function createElasticsearchSearchIndex(deps: ElasticsearchSearchIndexDeps) {
  const { client, index } = deps;
  const checkpoints = `${index}-checkpoints`;

  async function ensureIndex(name: string, body: Omit<estypes.IndicesCreateRequest, 'index'>) {
    if (await client.indices.exists({ index: name })) return;
    try {
      await client.indices.create({ index: name, ...body });
    } catch (error) {
      // Another process created it meanwhile.
      if (error instanceof errors.ResponseError && error.body?.error?.type === 'resource_already_exists_exception') return;
      throw error;
    }
  }

  return {
    kind: 'elasticsearch',
    sqlTables: [],
    schema: '',
    async setup() {
      await ensureIndex(index, {
        settings: { number_of_shards: 1, refresh_interval: deps.refreshInterval ?? '500ms', analysis: CHAT_TEXT_ANALYSIS },
        mappings: MESSAGE_MAPPING,
      });
      await ensureIndex(checkpoints, { settings: { number_of_shards: 1 }, mappings: CHECKPOINT_MAPPING });
    },
    async write(batch: SearchWrite) {
      const response = await client.bulk({ operations: bulkOperations(batch, index) });
      checkBulk(response);
    },
    async search(query: SearchQuery): Promise<SearchPage> {
      if (analyzeQuery(query.text).length === 0) throw new EmptyQueryError();
      if (query.scope.length === 0) return { hits: [], next: null };
      const response = await client.search({ index, ...searchRequest(query) });
      return parseSearchResponse(response, query.limit);
    },
    async checkpoint(shard: number) {
      try {
        const doc = await client.get({ index: checkpoints, id: `shard-${shard}` });
        const parsed = z.object({ position: z.number() }).safeParse(doc._source);
        return parsed.success ? parsed.data.position : 0;
      } catch (error) {
        if (error instanceof errors.ResponseError && error.statusCode === 404) return 0;
        throw error;
      }
    },
    async clear() {
      await client.deleteByQuery({ index: [index, checkpoints], query: { match_all: {} }, refresh: true, conflicts: 'proceed' });
    },
    async refresh() {
      await client.indices.refresh({ index: [index, checkpoints] });
    },
    async close() {
      await client.close();
    },
  } satisfies SearchIndex;
}

export { Client as ElasticsearchClient };
