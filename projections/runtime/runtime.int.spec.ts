import { afterEach, describe, expect, it } from 'vitest';
import { createSqlEventStore } from '../../infra/event-store/sql-event-store.js';
import { isOutage } from '../../domain/ports/health.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import { createPgliteDatabase } from '../../infra/sql/pglite.js';
import { createPostgresDatabase } from '../../infra/sql/postgres.js';
import { createTempDatabases } from '../../infra/testing/postgres.js';
import { terminateBackendsRepeatedly } from '../../infra/testing/terminate-backends.js';
import { createProjector, type Projection } from './runtime.js';

/** The runtime's own tests project stored events as they are (the server decodes conversation events: decode.ts). */
const raw = (events: readonly StoredEvent[]) => [...events];

/** Counts the events it saw, per type: a read model whose rebuild is easy to recognise. */
const counting = (name: string): Projection<StoredEvent> => ({
  name,
  schema: `CREATE TABLE IF NOT EXISTS ${name} (type text PRIMARY KEY, n int NOT NULL)`,
  tables: [name],
  async apply(tx, events) {
    for (const e of events) {
      await tx.query(`INSERT INTO ${name} (type, n) VALUES ($1, 1) ON CONFLICT (type) DO UPDATE SET n = ${name}.n + 1`, [e.type]);
    }
  },
});

const event = (type: string) => ({ event_id: crypto.randomUUID(), type, data: {}, metadata: {} });

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('projector runtime (live loop)', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function setup(): Promise<{ db: SqlDatabase; store: Awaited<ReturnType<typeof createSqlEventStore>>; projections: Projection<StoredEvent>[] }> {
    const db = await createPgliteDatabase();
    closers.push(() => db.close());
    const store = await createSqlEventStore({ shards: [db], ownsDatabases: false });
    closers.push(() => store.close());
    return { db, store, projections: [counting('rm_a'), counting('rm_b')] };
  }

  const counts = async (db: SqlDatabase, table: string) =>
    Object.fromEntries((await db.query<{ type: string; n: number }>(`SELECT type, n FROM ${table} ORDER BY type`)).rows.map((r) => [r.type, r.n]));

  it('applies new events to every projection, and sees a reset made by another runner without waiting for a new event', async () => {
    const { db, store, projections } = await setup();
    const live = createProjector({ decode: raw, store, db, projections, pollIntervalMs: 10 });
    await live.start();
    closers.push(() => live.stop());
    await store.append('s-1', [event('X'), event('Y'), event('X')], { expectedVersion: 0 });
    await until(async () => (await counts(db, 'rm_b')).X === 2, 'the live projections');
    expect(await counts(db, 'rm_a')).toEqual({ X: 2, Y: 1 });

    // Another runner (the operator's CLI) empties one read model and sets its checkpoint to 0,
    // then stops before rebuilding it. No event follows: the live loop must notice by itself.
    const cli = createProjector({ decode: raw, store, db, projections });
    await cli.reset('rm_a');
    expect(await counts(db, 'rm_a')).toEqual({});
    await until(async () => (await counts(db, 'rm_a')).X === 2, 'the live loop to rebuild the reset read model');
    expect(await counts(db, 'rm_a')).toEqual({ X: 2, Y: 1 });
    expect(await counts(db, 'rm_b')).toEqual({ X: 2, Y: 1 });

    // And it goes on live, each event once in each read model.
    await store.append('s-2', [event('Y')], { expectedVersion: 0 });
    await until(async () => (await counts(db, 'rm_a')).Y === 2 && (await counts(db, 'rm_b')).Y === 2, 'the next event');
    expect(await counts(db, 'rm_a')).toEqual({ X: 2, Y: 2 });
    expect(await counts(db, 'rm_b')).toEqual({ X: 2, Y: 2 });
  });

  it('a projection that keeps failing does not hold up the others (the shared batch falls back to one transaction each)', async () => {
    const { db, store } = await setup();
    const broken: Projection<StoredEvent> = {
      ...counting('rm_broken'),
      async apply(tx, events) {
        if (events.some((e) => e.type === 'Boom')) throw new Error('this projection cannot take Boom');
        await counting('rm_broken').apply(tx, events);
      },
    };
    const warnings: string[] = [];
    const logger = { info() {}, warn: (_: object, msg?: string) => void warnings.push(msg ?? ''), error: (_: object, msg?: string) => void warnings.push(msg ?? '') };
    const live = createProjector({ decode: raw, store, db, projections: [counting('rm_a'), broken], pollIntervalMs: 5, logger });
    await live.start();
    closers.push(() => live.stop());
    await store.append('s-1', [event('X')], { expectedVersion: 0 });
    await until(async () => (await counts(db, 'rm_broken')).X === 1, 'both projections');
    await store.append('s-1', [event('Boom'), event('Y')], { expectedVersion: 1 });
    await until(async () => (await counts(db, 'rm_a')).Y === 1, 'the healthy projection to go on');
    expect(await counts(db, 'rm_a')).toEqual({ Boom: 1, X: 1, Y: 1 });
    expect(await counts(db, 'rm_broken')).toEqual({ X: 1 });
    expect(warnings.length).toBeGreaterThan(0);
  });

  it('while caught up, one poll reads the log once for all projections of the shard', async () => {
    const { db, store, projections } = await setup();
    let logReads = 0;
    let checkpointReads = 0;
    const counted = { ...store, readLog: (...args: Parameters<typeof store.readLog>) => { logReads++; return store.readLog(...args); } };
    const countingDb: SqlDatabase = {
      ...db,
      query: (text, params) => {
        if (/^SELECT position FROM projection_checkpoints WHERE projection = \$1 AND shard = \$2$/.test(text)) checkpointReads++;
        return db.query(text, params);
      },
    };
    const live = createProjector({ decode: raw, store: counted, db: countingDb, projections: [...projections, counting('rm_c')], pollIntervalMs: 5 });
    await live.start();
    closers.push(() => live.stop());
    await store.append('s-1', [event('X')], { expectedVersion: 0 });
    await until(async () => (await counts(db, 'rm_c')).X === 1, 'the live projections');
    // Let it poll a while, then compare the checkpoint reads with the polls it made.
    logReads = 0;
    checkpointReads = 0;
    const started = Date.now();
    await until(async () => logReads >= 40, '40 polls');
    const elapsedS = (Date.now() - started) / 1000;
    // Three projections caught up at one position: a poll is one log read for all of them, and
    // the checkpoints are read only by the refresh, once a second (three per refresh). Reading
    // them at every poll (as before) would make as many checkpoint reads as log reads.
    expect(checkpointReads).toBeLessThanOrEqual(3 * (1 + Math.ceil(elapsedS)));
  });

  it('on PostgreSQL, carries on through terminated connections (a restart, an administrator) and applies each event once', async () => {
    const temp = await createTempDatabases('projector_terminated', 1);
    closers.push(() => temp.drop());
    const db = createPostgresDatabase({ connectionString: temp.urls[0]!, max: 4 });
    closers.push(() => db.close());
    const store = await createSqlEventStore({ shards: [db], ownsDatabases: false });
    closers.push(() => store.close());
    const failures: string[] = [];
    const logger = { info() {}, debug: (_: object, msg?: string) => void failures.push(msg ?? ''), warn: (_: object, msg?: string) => void failures.push(msg ?? ''), error: (_: object, msg?: string) => void failures.push(msg ?? '') };
    const live = createProjector({ decode: raw, store, db, projections: [counting('rm_a'), counting('rm_b')], pollIntervalMs: 5, logger });
    await live.start();
    closers.push(() => live.stop());

    const terminator = terminateBackendsRepeatedly(temp.names, { everyMs: 100, rounds: 10 });
    const streams = 6;
    const perStream = 10;
    await Promise.all(
      Array.from({ length: streams }, async (_, i) => {
        for (let version = 0; version < perStream; version++) {
          const events = [event(version % 2 === 0 ? 'X' : 'Y')];
          for (;;) {
            try {
              await store.append(`s-${i}`, events, { expectedVersion: version });
              break;
            } catch (error) {
              if (!isOutage(error)) throw error;
              await new Promise((r) => setTimeout(r, 10));
            }
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      }),
    );
    expect(await terminator.done).toBeGreaterThan(0);
    const half = (streams * perStream) / 2;
    await until(async () => (await counts(db, 'rm_a')).Y === half && (await counts(db, 'rm_b')).Y === half, 'both projections to catch up', 20_000);
    expect(await counts(db, 'rm_a')).toEqual({ X: half, Y: half });
    expect(await counts(db, 'rm_b')).toEqual({ X: half, Y: half });
  });
});
