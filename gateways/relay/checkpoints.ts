import type { SqlDatabase } from '../../domain/ports/sql.js';

/**
 * The relay's checkpoints and leases: one row per (relay, shard) in `relay_checkpoints`.
 *
 * `position` is the last log position of the shard the bus has acknowledged; it only grows.
 * `owner` / `lease_until` say which relay process publishes the shard: a relay takes the row when
 * nobody holds it or the holder's lease ran out, renews it with every checkpoint (and while idle),
 * and clears it when it stops. Every time is the database's `now()`, so the processes' clocks do not
 * matter.
 *
 * Why a lease row and not a session advisory lock: the relay reaches its database through the
 * SqlDatabase port (a pool for `pg`, the one connection of PGlite). A session lock needs one
 * dedicated connection for the leader's whole life — on PGlite every relay of the process shares
 * the same session, so the lock would be re-entrant and elect everybody, and holding a transaction
 * open instead would block every other query of PGlite. A lease row is plain SQL on both, survives
 * poolers (pgbouncer in transaction mode), and does not rely on TCP keepalive to notice a half-open
 * connection of a dead leader. The cost: a crashed leader's shard waits up to one lease (default
 * 10 s) before another relay takes it; a leader that stops cleanly hands it over at once.
 *
 * Safety does not depend on the lease: a checkpoint only ever records a position the bus has
 * acknowledged (never past an event it did not take), and `greatest()` keeps it from moving back.
 * The lease only keeps two relays from publishing the same events (which the bus would dedupe).
 */
export const RELAY_SCHEMA = `
create table if not exists relay_checkpoints (
  relay text not null,
  shard integer not null check (shard >= 0),
  position bigint not null default 0 check (position >= 0),
  owner text,
  lease_until timestamptz,
  updated_at timestamptz not null default now(),
  primary key (relay, shard)
)`;

/** Serialises concurrent schema set-ups (two processes starting at once). */
export const RELAY_SCHEMA_LOCK_KEY = 4_242_017_010;

export type Lease = { position: number };

export type RelayCheckpoints = {
  ensureSchema(shards: number): Promise<void>;
  /** Takes (or keeps) the shard's lease; returns the checkpoint, or null when another relay holds a live lease. */
  acquire(shard: number): Promise<Lease | null>;
  /** Records `position` (acknowledged by the bus) and renews the lease; false when the lease was taken over. */
  checkpoint(shard: number, position: number): Promise<boolean>;
  /** Renews the lease without moving the checkpoint; false when it was taken over. */
  renew(shard: number): Promise<boolean>;
  /** Gives the lease up (clean stop) so another relay takes over at once. */
  release(shard: number): Promise<void>;
  read(): Promise<{ shard: number; position: number; owner: string | null; leaseValid: boolean }[]>;
};

export function relayCheckpoints(db: SqlDatabase, relay: string, owner: string, leaseMs: number): RelayCheckpoints {
  const lease = `($4::integer * interval '1 millisecond')`;
  return {
    async ensureSchema(shards: number) {
      await db.transaction(async (tx) => {
        await tx.query(`select pg_advisory_xact_lock(${RELAY_SCHEMA_LOCK_KEY})`);
        await tx.query(RELAY_SCHEMA);
        await tx.query(
          `insert into relay_checkpoints (relay, shard) select $1, s from generate_series(0, $2::integer - 1) as s
           on conflict (relay, shard) do nothing`,
          [relay, shards],
        );
      });
    },

    async acquire(shard: number) {
      const { rows } = await db.query<{ position: number | string }>(
        `update relay_checkpoints set owner = $3, lease_until = now() + ${lease}, updated_at = now()
          where relay = $1 and shard = $2 and (owner = $3 or owner is null or lease_until is null or lease_until < now())
          returning position`,
        [relay, shard, owner, leaseMs],
      );
      const row = rows[0];
      return row === undefined ? null : { position: Number(row.position) };
    },

    async checkpoint(shard: number, position: number) {
      const { rows } = await db.query(
        `update relay_checkpoints set position = greatest(position, $5), lease_until = now() + ${lease}, updated_at = now()
          where relay = $1 and shard = $2 and owner = $3
          returning shard`,
        [relay, shard, owner, leaseMs, position],
      );
      return rows.length === 1;
    },

    async renew(shard: number) {
      const { rows } = await db.query(
        `update relay_checkpoints set lease_until = now() + ${lease}
          where relay = $1 and shard = $2 and owner = $3
          returning shard`,
        [relay, shard, owner, leaseMs],
      );
      return rows.length === 1;
    },

    async release(shard: number) {
      await db.query(
        `update relay_checkpoints set owner = null, lease_until = null, updated_at = now()
          where relay = $1 and shard = $2 and owner = $3`,
        [relay, shard, owner],
      );
    },

    async read() {
      const { rows } = await db.query<{ shard: number; position: number | string; owner: string | null; lease_valid: boolean }>(
        `select shard, position, owner, coalesce(lease_until >= now(), false) as lease_valid
           from relay_checkpoints where relay = $1 order by shard`,
        [relay],
      );
      return rows.map((r) => ({ shard: r.shard, position: Number(r.position), owner: r.owner, leaseValid: r.lease_valid }));
    },
  };
}
