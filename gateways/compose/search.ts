import { Client } from '@elastic/elasticsearch';
import type { Config } from '../../infra/config/config.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createElasticsearchSearchIndex } from '../../infra/search/elasticsearch.js';
import type { SearchIndex } from '../../domain/ports/search.js';
import { createPostgresSearchIndex } from '../../infra/search/postgres.js';

/**
 * The SearchIndex the configuration names: Elasticsearch when ELASTICSEARCH_URL is set, else
 * PostgreSQL full-text search in `db` (the read-model database). Shared by the server's
 * composition root and the operator tools, so both feed the same index.
 */
export function searchIndexFromConfig(config: Pick<Config, 'elasticsearchUrls' | 'elasticsearchIndex'>, db: SqlDatabase): SearchIndex {
  if (config.elasticsearchUrls.length === 0) return createPostgresSearchIndex({ db });
  return createElasticsearchSearchIndex({ client: new Client({ nodes: [...config.elasticsearchUrls] }), index: config.elasticsearchIndex });
}
