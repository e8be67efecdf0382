import { randomBytes } from 'node:crypto';
import { Client } from '@elastic/elasticsearch';
import { describe } from 'vitest';
import { searchIndexContract } from './contract.js';
import { createElasticsearchSearchIndex } from './elasticsearch.js';

/**
 * The SearchIndex contract against a real Elasticsearch, when ELASTICSEARCH_URL names one
 * (e.g. ELASTICSEARCH_URL=http://127.0.0.1:9200). None can be installed on the development
 * machines, so without it this file only reports the suite as skipped; the adapter's requests are
 * still checked against the client mock (elasticsearch.unit.spec.ts).
 */
const url = process.env.ELASTICSEARCH_URL;

describe.skipIf(url === undefined || url === '')('Elasticsearch (needs ELASTICSEARCH_URL)', () => {
  searchIndexContract('elasticsearch', {
    async create() {
      const client = new Client({ node: url!.split(',').map((u) => u.trim()) });
      const name = `chat-test-${randomBytes(6).toString('hex')}`;
      const index = createElasticsearchSearchIndex({ client, index: name });
      await index.setup();
      return {
        ...index,
        async close() {
          await client.indices.delete({ index: [name, `${name}-checkpoints`], ignore_unavailable: true });
          await index.close();
        },
      };
    },
  });
});
