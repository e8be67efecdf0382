import type { SqlClient } from './sql.js';

/**
 * The SearchIndex port: full-text search over chat messages, fed by the search projection
 * (projections/search) from the event store log.
 *
 * Guarantees every adapter gives (contract.ts checks them):
 * - `write` is idempotent by message id: applying the same batch twice (at-least-once delivery
 *   after a crash) leaves the index as applying it once. A document is never partly written.
 * - A SQL adapter writes in the `tx` it is handed (the projector's transaction), so the index and
 *   the projection's checkpoint commit together; an external adapter (Elasticsearch) writes
 *   before that transaction commits and relies on the idempotence above.
 * - `search` only returns messages inside `scope` — the caller's membership intervals — and
 *   returns nothing for an empty scope. Every query term must match (AND). Hits are ordered by
 *   score (higher first), then created_at (newer first), then message_id (descending); `after`
 *   continues strictly after a hit of a previous page with that order, so pages neither repeat nor
 *   skip hits while the index is unchanged.
 * - A written document is searchable within 1 s (`refresh` makes it searchable at once).
 * - `checkpoint(shard)` is the highest log position whose batch this index holds (0: none), so
 *   the composition root can notice an index that lost data (e.g. a recreated Elasticsearch
 *   index) and rebuild the projection.
 */

export type SearchDocument = {
  message_id: string;
  conversation_id: string;
  /** The message's stream version in its conversation. */
  sequence_number: number;
  sender_id: string;
  /** ISO 8601. */
  created_at: string;
  content: string;
};

/** A member's stay in a conversation: messages with from_version <= sequence_number < to_version (null: still a member). */
export type MembershipInterval = {
  conversation_id: string;
  from_version: number;
  to_version: number | null;
};

/** Where the previous page ended: its last hit's sort key. */
export type SearchAfter = { score: number; created_at: string; message_id: string };

export type SearchQuery = {
  /** Free text, analysed by the adapter; must contain at least one term (the caller checks). */
  text: string;
  scope: readonly MembershipInterval[];
  sender_id?: string;
  /** Inclusive lower bound on created_at (ISO 8601). */
  from?: string;
  /** Exclusive upper bound on created_at (ISO 8601). */
  until?: string;
  /** 1..100 */
  limit: number;
  after?: SearchAfter;
};

export type SearchHit = SearchDocument & { score: number };

export type SearchPage = {
  hits: SearchHit[];
  /** Set when more hits may follow: pass it as `after` for the next page. */
  next: SearchAfter | null;
};

export type SearchWrite = {
  upserts: readonly SearchDocument[];
  removals: readonly string[];
  /** The log position this batch ends at, recorded with it. */
  checkpoint: { shard: number; position: number };
};

export interface SearchIndex {
  readonly kind: 'postgres' | 'elasticsearch';
  /** SQL tables the adapter keeps in the projector's database (emptied by a rebuild); [] for an external index. */
  readonly sqlTables: readonly string[];
  /** Idempotent set-up: the SQL tables (`schema`) or the index and its mapping. */
  readonly schema: string;
  setup(): Promise<void>;
  write(batch: SearchWrite, tx?: SqlClient): Promise<void>;
  search(query: SearchQuery): Promise<SearchPage>;
  checkpoint(shard: number): Promise<number>;
  /** Removes every document and checkpoint (a rebuild starts from an empty index). */
  clear(): Promise<void>;
  /** Makes every acknowledged write searchable now (tests and benchmarks). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** Query text with no searchable term (only spaces, punctuation or emoji). */
export class EmptyQueryError extends Error {
  override readonly name = 'EmptyQueryError';
  constructor() {
    super('query: contains no searchable word');
  }
}
