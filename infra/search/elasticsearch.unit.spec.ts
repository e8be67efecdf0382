import { createRequire } from 'node:module';
import { Client } from '@elastic/elasticsearch';
import MockModule from '@elastic/elasticsearch-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { CHAT_TEXT_ANALYSIS, createElasticsearchSearchIndex, MESSAGE_MAPPING } from './elasticsearch.js';
import { EmptyQueryError, type SearchDocument } from '../../domain/ports/search.js';

/**
 * The Elasticsearch adapter's requests and response handling, against @elastic/elasticsearch-mock
 * (no Elasticsearch server runs on this machine): the mock records what the real client sends —
 * method, path and parsed body — and answers as Elasticsearch would. What it cannot check is
 * Elasticsearch's own behaviour (analysis, scoring): that is the contract suite's job against a
 * real server (elasticsearch.int.spec.ts, with ELASTICSEARCH_URL).
 */

type MockParams = { method: string; path: string; querystring: Record<string, string>; body: unknown };
type Mock = {
  add(pattern: { method: string | string[]; path: string | string[] }, resolver: (params: MockParams) => unknown): Mock;
  getConnection(): ConstructorParameters<typeof Client>[0]['Connection'];
};
// The mock's CommonJS typings do not resolve as a constructor under NodeNext.
const ClientMock = MockModule as unknown as new () => Mock;

// The mock (CommonJS) recognises error answers by the CommonJS build's classes, not the ESM ones.
const { errors } = createRequire(import.meta.url)('@elastic/elasticsearch') as typeof import('@elastic/elasticsearch');

const INDEX = 'chat-test';
const notFound = () =>
  new errors.ResponseError({ body: { error: { type: 'index_not_found_exception' }, status: 404 }, statusCode: 404, headers: {}, warnings: null, meta: {} as never });

let mock: Mock;
let requests: MockParams[];
function setup() {
  mock = new ClientMock();
  requests = [];
  const client = new Client({ node: 'http://localhost:9200', Connection: mock.getConnection() });
  return createElasticsearchSearchIndex({ client, index: INDEX });
}
const record = (answer: unknown) => (params: MockParams) => {
  requests.push(params);
  return typeof answer === 'function' ? (answer as (p: MockParams) => unknown)(params) : answer;
};

const doc = (n: number): SearchDocument => ({
  message_id: `m${n}`,
  conversation_id: 'c1',
  sequence_number: n,
  sender_id: 'alice',
  created_at: `2026-01-0${n}T10:00:00.000Z`,
  content: `hello ${n}`,
});

describe('Elasticsearch SearchIndex requests (mock)', () => {
  beforeEach(() => {
    requests = [];
  });

  it('setup creates both indices when missing: the chat_text analyzer, a strict mapping, refresh every 500 ms', async () => {
    const index = setup();
    mock.add({ method: 'HEAD', path: [`/${INDEX}`, `/${INDEX}-checkpoints`] }, record(notFound));
    mock.add({ method: 'PUT', path: [`/${INDEX}`, `/${INDEX}-checkpoints`] }, record({ acknowledged: true }));
    await index.setup();
    const puts = requests.filter((r) => r.method === 'PUT');
    expect(puts.map((r) => r.path)).toEqual([`/${INDEX}`, `/${INDEX}-checkpoints`]);
    expect(puts[0]!.body).toEqual({
      settings: { number_of_shards: 1, refresh_interval: '500ms', analysis: CHAT_TEXT_ANALYSIS },
      mappings: MESSAGE_MAPPING,
    });
    expect(puts[0]!.body).toMatchObject({
      settings: { analysis: { analyzer: { chat_text: { tokenizer: 'standard', filter: ['cjk_width', 'lowercase', 'asciifolding', 'cjk_bigram'] } } } },
      mappings: { dynamic: 'strict', properties: { content: { type: 'text', analyzer: 'chat_text' }, conversation_id: { type: 'keyword' }, created_at: { type: 'date' } } },
    });
    expect(puts[1]!.body).toMatchObject({ mappings: { properties: { position: { type: 'long' } } } });
  });

  it('setup leaves existing indices alone, and tolerates losing the creation race', async () => {
    const index = setup();
    mock.add({ method: 'HEAD', path: `/${INDEX}` }, record({}));
    mock.add({ method: 'HEAD', path: `/${INDEX}-checkpoints` }, record(notFound));
    mock.add(
      { method: 'PUT', path: `/${INDEX}-checkpoints` },
      record(() => new errors.ResponseError({ body: { error: { type: 'resource_already_exists_exception' }, status: 400 }, statusCode: 400, headers: {}, warnings: null, meta: {} as never })),
    );
    await index.setup();
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([`HEAD /${INDEX}`, `HEAD /${INDEX}-checkpoints`, `PUT /${INDEX}-checkpoints`]);
  });

  it('write sends one bulk: documents by message id, removals, and the shard checkpoint moved by max()', async () => {
    const index = setup();
    mock.add({ method: ['POST', 'PUT'], path: '/_bulk' }, record({ errors: false, took: 1, items: [] }));
    await index.write({ upserts: [doc(1), doc(2)], removals: ['m0'], checkpoint: { shard: 3, position: 77 } });
    expect(requests).toHaveLength(1);
    const lines = requests[0]!.body as unknown[];
    expect(lines).toEqual([
      { index: { _index: INDEX, _id: 'm1' } },
      doc(1),
      { index: { _index: INDEX, _id: 'm2' } },
      doc(2),
      { delete: { _index: INDEX, _id: 'm0' } },
      { update: { _index: `${INDEX}-checkpoints`, _id: 'shard-3' } },
      {
        script: { source: expect.stringContaining('ctx._source.position < params.position'), params: { position: 77 } },
        upsert: { shard: 3, position: 77 },
      },
    ]);
  });

  it('write throws on a failed bulk item, but not on deleting a missing document', async () => {
    const index = setup();
    let answer: unknown = {
      errors: true,
      took: 1,
      items: [
        { delete: { _index: INDEX, _id: 'gone', status: 404, result: 'not_found', error: { type: 'not_found', reason: 'missing' } } },
        { index: { _index: INDEX, _id: 'm1', status: 400, error: { type: 'mapper_parsing_exception', reason: 'failed to parse field [created_at]' } } },
      ],
    };
    mock.add({ method: ['POST', 'PUT'], path: '/_bulk' }, record(() => answer));
    await expect(index.write({ upserts: [doc(1)], removals: ['gone'], checkpoint: { shard: 0, position: 1 } })).rejects.toThrow(/m1 failed \(400\): mapper_parsing_exception/);
    answer = { errors: true, took: 1, items: [{ delete: { _index: INDEX, _id: 'gone', status: 404, result: 'not_found', error: { type: 'x' } } }] };
    await expect(index.write({ upserts: [], removals: ['gone'], checkpoint: { shard: 0, position: 2 } })).resolves.toBeUndefined();
  });

  it('search sends the query DSL: every word, membership scope, sender and dates as filters, sorted with search_after', async () => {
    const index = setup();
    mock.add(
      { method: ['POST', 'GET'], path: `/${INDEX}/_search` },
      record({
        took: 2,
        timed_out: false,
        _shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
        hits: {
          max_score: null,
          hits: [
            { _index: INDEX, _id: 'm2', _score: 2.5, _source: doc(2), sort: [2.5, 1767348000000, 'm2'] },
            { _index: INDEX, _id: 'm1', _score: 1.25, _source: doc(1), sort: [1.25, 1767261600000, 'm1'] },
            { _index: INDEX, _id: 'm9', _score: 1, _source: doc(3), sort: [1, 1767175200000, 'm9'] },
          ],
        },
      }),
    );
    const page = await index.search({
      text: 'Hello world',
      scope: [
        { conversation_id: 'c1', from_version: 1, to_version: null },
        { conversation_id: 'c2', from_version: 1, to_version: null },
        { conversation_id: 'c3', from_version: 4, to_version: 9 },
        { conversation_id: 'c4', from_version: 6, to_version: null },
      ],
      sender_id: 'alice',
      from: '2026-01-01T00:00:00.000Z',
      until: '2026-02-01T00:00:00.000Z',
      limit: 2,
      after: { score: 3, created_at: '2026-01-05T00:00:00.000Z', message_id: 'm7' },
    });
    expect(requests).toHaveLength(1);
    expect(requests[0]!.body).toEqual({
      size: 3,
      track_total_hits: false,
      _source: ['message_id', 'conversation_id', 'sequence_number', 'sender_id', 'created_at', 'content'],
      query: {
        bool: {
          must: [{ match: { content: { query: 'Hello world', operator: 'and' } } }],
          filter: [
            {
              bool: {
                should: [
                  { terms: { conversation_id: ['c1', 'c2'] } },
                  { bool: { filter: [{ term: { conversation_id: 'c3' } }, { range: { sequence_number: { gte: 4, lt: 9 } } }] } },
                  { bool: { filter: [{ term: { conversation_id: 'c4' } }, { range: { sequence_number: { gte: 6 } } }] } },
                ],
                minimum_should_match: 1,
              },
            },
            { term: { sender_id: 'alice' } },
            { range: { created_at: { gte: '2026-01-01T00:00:00.000Z', lt: '2026-02-01T00:00:00.000Z' } } },
          ],
        },
      },
      sort: [{ _score: { order: 'desc' } }, { created_at: { order: 'desc' } }, { message_id: { order: 'desc' } }],
      search_after: [3, Date.parse('2026-01-05T00:00:00.000Z'), 'm7'],
    });
    // limit + 1 asked: the extra hit only says that a next page exists.
    expect(page.hits).toEqual([
      { ...doc(2), score: 2.5 },
      { ...doc(1), score: 1.25 },
    ]);
    expect(page.next).toEqual({ score: 1.25, created_at: doc(1).created_at, message_id: 'm1' });
  });

  it('search rejects a malformed hit instead of passing it on, and sends nothing for an empty scope or query', async () => {
    const index = setup();
    mock.add(
      { method: ['POST', 'GET'], path: `/${INDEX}/_search` },
      record({ took: 1, timed_out: false, _shards: { total: 1, successful: 1, skipped: 0, failed: 0 }, hits: { hits: [{ _index: INDEX, _id: 'x', _score: 1, _source: { message_id: 'x' }, sort: [1] }] } }),
    );
    await expect(index.search({ text: 'hello', scope: [{ conversation_id: 'c', from_version: 1, to_version: null }], limit: 5 })).rejects.toThrow();
    requests = [];
    expect(await index.search({ text: 'hello', scope: [], limit: 5 })).toEqual({ hits: [], next: null });
    await expect(index.search({ text: '!!', scope: [{ conversation_id: 'c', from_version: 1, to_version: null }], limit: 5 })).rejects.toBeInstanceOf(EmptyQueryError);
    expect(requests).toEqual([]);
  });

  it('checkpoint reads the shard document; 0 when it does not exist', async () => {
    const index = setup();
    mock.add({ method: 'GET', path: `/${INDEX}-checkpoints/_doc/shard-0` }, record({ _index: `${INDEX}-checkpoints`, _id: 'shard-0', found: true, _source: { shard: 0, position: 42 } }));
    mock.add({ method: 'GET', path: `/${INDEX}-checkpoints/_doc/shard-1` }, record(notFound));
    expect(await index.checkpoint(0)).toBe(42);
    expect(await index.checkpoint(1)).toBe(0);
  });

  it('clear deletes every document of both indices; refresh refreshes both', async () => {
    const index = setup();
    mock.add({ method: 'POST', path: `/${INDEX},${INDEX}-checkpoints/_delete_by_query` }, record({ deleted: 3 }));
    mock.add({ method: ['POST', 'GET'], path: `/${INDEX},${INDEX}-checkpoints/_refresh` }, record({ _shards: { total: 2, successful: 2, failed: 0 } }));
    await index.clear();
    await index.refresh();
    expect(requests.map((r) => [r.method, r.path, r.querystring, r.body])).toEqual([
      ['POST', `/${INDEX},${INDEX}-checkpoints/_delete_by_query`, { refresh: 'true', conflicts: 'proceed' }, { query: { match_all: {} } }],
      [expect.any(String), `/${INDEX},${INDEX}-checkpoints/_refresh`, {}, null],
    ]);
  });
});
