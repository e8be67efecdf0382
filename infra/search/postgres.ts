import type { SqlClient, SqlDatabase } from '../../domain/ports/sql.js';
import { analyzeQuery, documentTerms } from '../../domain/search/analysis.js';
import { EmptyQueryError, type SearchDocument, type SearchHit, type SearchIndex, type SearchPage, type SearchQuery, type SearchWrite } from '../../domain/ports/search.js';

/**
 * SearchIndex over PostgreSQL full-text search, on PGlite (PG 18) and on a PostgreSQL server
 * (15+): the same SQL, no extension needed.
 *
 * Text is analysed in the application (analysis.ts: Unicode words, accents folded, CJK bigrams),
 * and stored as a tsvector literal with positions; queries are tsquery literals of the same terms
 * AND-ed. So no text search configuration is involved (the built-in ones stem one language and
 * split CJK poorly), and the server's locale cannot change what matches.
 * Ranking: ts_rank with normalisation 1 (term frequency, divided by 1 + log(document length)).
 *
 * Writes go to the transaction handed in (the projector's), or to the database itself.
 */

export type PostgresSearchIndexDeps = { db: SqlDatabase };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS search_messages (
  conversation_id text NOT NULL,
  sequence_number int NOT NULL,
  message_id text NOT NULL,
  sender_id text NOT NULL,
  created_at timestamptz NOT NULL,
  content text NOT NULL,
  tsv tsvector NOT NULL,
  PRIMARY KEY (conversation_id, sequence_number)
);
CREATE INDEX IF NOT EXISTS search_messages_tsv ON search_messages USING gin (tsv);
CREATE TABLE IF NOT EXISTS search_index_checkpoints (
  shard int PRIMARY KEY,
  position bigint NOT NULL
);
`;
/** tsvector positions stop at 16383; later words of a huge message keep that position. */
const MAX_POSITION = 16383;

const quote = (term: string) => `'${term.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
/** Word terms are letters, digits and marks: quoting is only needed in odd cases (and for ids). */
const quoteTerm = (term: string) => (term.includes("'") || term.includes('\\') ? quote(term) : `'${term}'`);

/**
 * Lexemes that are not words: the message's conversation and sender, so that the GIN index also
 * narrows a search to the caller's conversations (and a sender) before any row is read. Word
 * terms are only letters and digits, so a ':' keeps these apart from every word.
 */
export const conversationLexeme = (conversationId: string) => `c:${conversationId}`;
export const senderLexeme = (senderId: string) => `s:${senderId}`;

/** The tsvector literal of a message: each term with its positions ('word':1,7 'other':2), plus its conversation and sender lexemes. */
export function tsvectorLiteral(text: string, doc?: { conversation_id: string; sender_id: string }): string {
  // This runs once per indexed message (the indexing hot path): one slot per distinct term, its
  // positions kept as the literal's own text, and the literal built in place.
  const slots = new Map<string, number>();
  const terms: string[] = [];
  const positions: string[] = [];
  const counts: number[] = [];
  const last: number[] = [];
  let position = 0;
  for (const term of documentTerms(text)) {
    position = Math.min(position + 1, MAX_POSITION);
    const slot = slots.get(term);
    if (slot === undefined) {
      slots.set(term, terms.length);
      terms.push(term);
      positions.push(String(position));
      counts.push(1);
      last.push(position);
    } else if (last[slot] !== position && counts[slot]! < 256) {
      positions[slot] += `,${position}`;
      counts[slot]! += 1;
      last[slot] = position;
    }
  }
  let literal = '';
  for (let i = 0; i < terms.length; i++) {
    if (i > 0) literal += ' ';
    literal += quoteTerm(terms[i]!);
    literal += ':';
    literal += positions[i]!;
  }
  if (doc !== undefined) {
    literal += `${literal.length > 0 ? ' ' : ''}${quoteTerm(conversationLexeme(doc.conversation_id))} ${quoteTerm(senderLexeme(doc.sender_id))}`;
  }
  return literal;
}

/** The tsquery literal requiring every term of the query text; throws EmptyQueryError when it has none. */
export function tsqueryLiteral(text: string): string {
  const terms = analyzeQuery(text);
  if (terms.length === 0) throw new EmptyQueryError();
  return terms.map(quote).join(' & ');
}

type HitRow = {
  message_id: string;
  conversation_id: string;
  sequence_number: number;
  sender_id: string;
  created_at: Date | string;
  content: string;
  score: number | string;
};

const UPSERT = (source: string) => `
INSERT INTO search_messages (message_id, conversation_id, sequence_number, sender_id, created_at, content, tsv)
SELECT * FROM ${source}
ON CONFLICT (conversation_id, sequence_number) DO UPDATE SET message_id = EXCLUDED.message_id,
  sender_id = EXCLUDED.sender_id, created_at = EXCLUDED.created_at, content = EXCLUDED.content, tsv = EXCLUDED.tsv`;
const SEPARATOR = '\u001e';
const split = (n: number, type: string) => `string_to_array($${n}, E'\\x1e')::${type}[]`;
const UPSERT_JOINED = UPSERT(
  `unnest(${split(1, 'text')}, ${split(2, 'text')}, ${split(3, 'int')}, ${split(4, 'text')}, ${split(5, 'timestamptz')}, ${split(6, 'text')}, ${split(7, 'tsvector')})`,
);
const UPSERT_ARRAYS = UPSERT('unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], $6::text[], $7::tsvector[])');

const iso = (value: Date | string) => (value instanceof Date ? value : new Date(value)).toISOString();

export function createPostgresSearchIndex(deps: PostgresSearchIndexDeps) {
  const { db } = deps;

  async function write(batch: SearchWrite, tx?: SqlClient): Promise<void> {
    const client = tx ?? db;
    // Last write of a message wins; one statement must not touch a row twice. A message id names
    // one (conversation, sequence_number) forever (it is the MessageSent event's stream version),
    // so that pair is the key: it also serves the scope join, and saves an index on message_id.
    const docs = [...new Map(batch.upserts.map((d) => [`${d.sequence_number}/${d.conversation_id}`, d])).values()];
    if (docs.length > 0) {
      const columns = [
        docs.map((d) => d.message_id),
        docs.map((d) => d.conversation_id),
        docs.map((d) => String(d.sequence_number)),
        docs.map((d) => d.sender_id),
        docs.map((d) => d.created_at),
        docs.map((d) => d.content),
        docs.map((d) => tsvectorLiteral(d.content, d)),
      ];
      // Each column as one text joined by U+001E: pg would escape every element of an array with
      // two regular expressions, and the server parse the quoted literal; this costs neither.
      // A value that itself holds U+001E (nothing types it; a bot might) sends the batch as arrays,
      // and so does an empty one (string_to_array('') is an empty array, not one empty string).
      // (The tsvector column is made of analysed terms, which are letters, digits and marks, and of
      // the ids checked here.)
      const joinable = [0, 1, 3, 4, 5].every((c) => columns[c]!.every((value) => value !== '' && !value.includes(SEPARATOR)));
      await client.query(joinable ? UPSERT_JOINED : UPSERT_ARRAYS, joinable ? columns.map((column) => column.join(SEPARATOR)) : columns);
    }
    if (batch.removals.length > 0) {
      // No event removes a message yet: a scan is fine until one does (then index message_id).
      await client.query('DELETE FROM search_messages WHERE message_id = ANY($1::text[])', [[...batch.removals]]);
    }
    await client.query(
      `INSERT INTO search_index_checkpoints (shard, position) VALUES ($1, $2)
       ON CONFLICT (shard) DO UPDATE SET position = GREATEST(search_index_checkpoints.position, EXCLUDED.position)`,
      [batch.checkpoint.shard, batch.checkpoint.position],
    );
  }

  async function search(query: SearchQuery): Promise<SearchPage> {
    const words = tsqueryLiteral(query.text);
    if (query.scope.length === 0) return { hits: [], next: null };
    // The GIN index answers words AND (one of the caller's conversations) [AND the sender] in one
    // scan: only matching rows of those conversations are read. Ranking uses the words alone.
    const conversations = [...new Set(query.scope.map((s) => s.conversation_id))].map((id) => quote(conversationLexeme(id)));
    const narrowed = [`(${words})`, `(${conversations.join(' | ')})`];
    if (query.sender_id !== undefined) narrowed.push(quote(senderLexeme(query.sender_id)));
    const params: unknown[] = [
      query.scope.map((s) => s.conversation_id),
      query.scope.map((s) => s.from_version),
      query.scope.map((s) => s.to_version),
      words,
      narrowed.join(' & '),
    ];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    const where: string[] = [];
    if (query.sender_id !== undefined) where.push(`m.sender_id = ${param(query.sender_id)}`);
    if (query.from !== undefined) where.push(`m.created_at >= ${param(query.from)}::timestamptz`);
    if (query.until !== undefined) where.push(`m.created_at < ${param(query.until)}::timestamptz`);
    if (query.after !== undefined) {
      const a = query.after;
      where.push(`(m.score, m.created_at, m.message_id) < (${param(a.score)}::real, ${param(a.created_at)}::timestamptz, ${param(a.message_id)}::text)`);
    }
    const limit = param(query.limit + 1);
    // OFFSET 0 keeps the GIN scan apart: the planner must not trade it for walking every message
    // of the caller's conversations by primary key.
    const { rows } = await db.query<HitRow>(
      `WITH scope AS (
         SELECT * FROM unnest($1::text[], $2::int[], $3::int[]) AS s(conversation_id, from_version, to_version)
       )
       SELECT m.message_id, m.conversation_id, m.sequence_number, m.sender_id, m.created_at, m.content, m.score
       FROM (
         SELECT message_id, conversation_id, sequence_number, sender_id, created_at, content, ts_rank(tsv, $4::tsquery, 1) AS score
         FROM search_messages WHERE tsv @@ $5::tsquery OFFSET 0
       ) m
       WHERE EXISTS (
         SELECT 1 FROM scope s WHERE s.conversation_id = m.conversation_id
           AND m.sequence_number >= s.from_version AND (s.to_version IS NULL OR m.sequence_number < s.to_version)
       )${where.length > 0 ? ` AND ${where.join(' AND ')}` : ''}
       ORDER BY m.score DESC, m.created_at DESC, m.message_id DESC
       LIMIT ${limit}`,
      params,
    );
    const hits: SearchHit[] = rows.slice(0, query.limit).map((r) => ({
      message_id: r.message_id,
      conversation_id: r.conversation_id,
      sequence_number: Number(r.sequence_number),
      sender_id: r.sender_id,
      created_at: iso(r.created_at),
      content: r.content,
      score: Number(r.score),
    }));
    const last = hits[hits.length - 1];
    const next = rows.length > query.limit && last ? { score: last.score, created_at: last.created_at, message_id: last.message_id } : null;
    return { hits, next };
  }

  return {
    kind: 'postgres',
    sqlTables: ['search_messages', 'search_index_checkpoints'],
    schema: SCHEMA,
    async setup() {
      await db.exec(SCHEMA);
    },
    write,
    search,
    async checkpoint(shard: number) {
      const { rows } = await db.query<{ position: string | number }>('SELECT position FROM search_index_checkpoints WHERE shard = $1', [shard]);
      return Number(rows[0]?.position ?? 0);
    },
    async clear() {
      await db.transaction(async (tx) => {
        await tx.query('DELETE FROM search_messages');
        await tx.query('DELETE FROM search_index_checkpoints');
      });
    },
    async refresh() {
      // Committed rows are visible at once.
    },
    async close() {
      // The database belongs to the caller.
    },
  } satisfies SearchIndex;
}

export type { SearchDocument };
