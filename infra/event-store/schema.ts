import type { SqlDatabase } from '../sql/port.js';

/** Key of the advisory lock every append transaction takes before assigning positions (advisory locks are scoped to a database, so one shard's lock never blocks another). */
export const APPEND_LOCK_KEY = 4_242_017_001;
/** Serialises concurrent schema set-ups (two processes starting at once). */
export const SCHEMA_LOCK_KEY = 4_242_017_000;

/**
 * The event store's schema in one shard database, valid on PostgreSQL 15 and on PGlite (18).
 *
 * `events` is both the streams and the shard's log. A stream's version is its highest event
 * version, one backward step on the primary key. There is deliberately no
 * `streams(stream_id, version)` table: upserting it cost about a quarter of the database CPU of a
 * group-commit batch, for a number the primary key already gives, and it can never disagree with
 * the events. Three indexes, each needed: (stream_id, version) to read a stream, find its version
 * and keep versions unique; position to read the log; event_id for idempotency and id uniqueness.
 *
 * `event_store_append` is the only writer. It takes the shard's append lock, checks that every
 * stream of the batch is still at the version the batch was planned against (returning the actual
 * versions of those that are not, and writing nothing), then inserts the rows at positions
 * head+1... The lock is released only after the commit is visible, so the next appender's
 * max(position) includes it: positions are gap-free and grow in commit order. The function is
 * VOLATILE, so each of its statements takes a fresh snapshot — after the lock is held.
 * data and metadata arrive as one text each, the rows' JSON joined by U+001E (JSON.stringify never
 * emits a raw control character): far cheaper to send and split than a jsonb[] literal.
 */
export const EVENT_STORE_SCHEMA: readonly string[] = [
  `create table if not exists events (
    stream_id text not null,
    version integer not null check (version > 0),
    position bigint not null check (position > 0),
    event_id uuid not null,
    type text not null,
    data jsonb not null,
    metadata jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    constraint events_pkey primary key (stream_id, version),
    constraint events_position_key unique (position),
    constraint events_event_id_key unique (event_id)
  )`,
  `create or replace function event_store_append(
    p_streams text[], p_stream_versions integer[],
    p_stream_ids text[], p_versions integer[], p_event_ids uuid[], p_types text[], p_data text, p_metadata text
  ) returns table (o_base bigint, o_stream text, o_version integer)
  language plpgsql volatile as $fn$
  declare
    v_base bigint;
  begin
    perform pg_advisory_xact_lock(${APPEND_LOCK_KEY});
    return query
      select null::bigint, s.id, coalesce(cur.v, 0)
        from unnest(p_streams, p_stream_versions) as s(id, planned)
        left join lateral (
          select e.version as v from events e where e.stream_id = s.id order by e.version desc limit 1
        ) cur on true
       where coalesce(cur.v, 0) <> s.planned;
    if found then
      return;
    end if;
    select coalesce(max(e.position), 0) into v_base from events e;
    insert into events (stream_id, version, position, event_id, type, data, metadata)
    select r.stream_id, r.version, v_base + r.ord, r.event_id, r.type, r.data::jsonb, r.metadata::jsonb
      from unnest(p_stream_ids, p_versions, p_event_ids, p_types,
                  string_to_array(p_data, E'\\x1e'), string_to_array(p_metadata, E'\\x1e'))
           with ordinality as r(stream_id, version, event_id, type, data, metadata, ord);
    return query select v_base, null::text, null::integer;
  end
  $fn$`,
];

/** Creates or updates the schema; safe to run concurrently and repeatedly. */
export async function ensureEventStoreSchema(db: SqlDatabase): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`);
    for (const statement of EVENT_STORE_SCHEMA) await tx.query(statement);
  });
}
