import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../sql/postgres.js';
import { createTestDatabases, type TestDatabases } from '../sql/test-databases.js';
import { searchIndexContract } from './contract.js';
import { createPostgresSearchIndex, tsqueryLiteral, tsvectorLiteral } from './postgres.js';

// A real PostgreSQL server (15 here) and PGlite (PostgreSQL 18 in WASM) run the same SQL.
let databases: TestDatabases;
let server: SqlDatabase;

beforeAll(async () => {
  databases = await createTestDatabases(1, { prefix: 'search_test' });
  server = createPostgresDatabase({ connectionString: databases.urls[0]!, max: 4 });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await databases?.drop();
}, 60_000);

searchIndexContract('postgres (server)', {
  async create() {
    const index = createPostgresSearchIndex({ db: server });
    await index.setup();
    await index.clear();
    return index;
  },
});

let embedded: SqlDatabase | undefined;
afterAll(() => embedded?.close());
searchIndexContract('postgres (pglite)', {
  async create() {
    embedded ??= await createPgliteDatabase();
    const index = createPostgresSearchIndex({ db: embedded });
    await index.setup();
    await index.clear();
    return index;
  },
});

describe('postgres search literals', () => {
  it('quotes terms so any text is a valid tsvector and tsquery', async () => {
    const text = "l'été \\ O'Brien's back\\slash 'quoted' ünïcödé";
    const vector = tsvectorLiteral(text);
    const { rows } = await server.query<{ ok: boolean }>('SELECT $1::tsvector @@ $2::tsquery AS ok', [vector, tsqueryLiteral("o'brien UNICODE")]);
    expect(rows[0]!.ok).toBe(true);
    expect(tsvectorLiteral('a b a')).toBe("'a':1,3 'b':2");
  });
});
