import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { wrapPglite } from '../sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { eventStoreContract, newEvent } from './contract.js';
import { createPgliteEventStore } from './pglite.js';
import { ensureEventStoreSchema } from './schema.js';
import type { AppendMode } from './sql-event-store.js';

// Two in-memory PGlite databases (the second a clone of the first: much faster than starting
// another), emptied before each store the contract asks for.
const databases: SqlDatabase[] = [];

beforeAll(async () => {
  const first = await PGlite.create();
  databases.push(wrapPglite(first));
  await ensureEventStoreSchema(databases[0]!);
  databases.push(wrapPglite(await first.clone()));
}, 60_000);

afterAll(async () => {
  await Promise.all(databases.map((db) => db.close()));
});

for (const mode of ['group-commit', 'one-tx-per-append'] as AppendMode[]) {
  eventStoreContract(`pglite ${mode}`, {
    groupCommit: mode === 'group-commit',
    async create({ shards }) {
      for (const db of databases) await db.exec('truncate events');
      return createPgliteEventStore({ databases: databases.slice(0, shards), mode });
    },
  });
}

describe('createPgliteEventStore', () => {
  it('keeps a data directory across reopening, and closes the databases it owns', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'es-pglite-'));
    try {
      const first = await createPgliteEventStore({ dataDirs: [join(dir, 'shard0')] });
      const event = newEvent('MessageSent', { text: 'persisted' });
      await first.append('s', [event], { expectedVersion: 0 });
      await first.close();
      await expect(first.readStream('s')).rejects.toThrow(/closed/);

      const second = await createPgliteEventStore({ dataDirs: [join(dir, 'shard0')] });
      const read = await second.readStream('s');
      expect(read.map((e) => [e.event_id, e.data])).toEqual([[event.event_id, { text: 'persisted' }]]);
      expect(await second.append('s', [event], { expectedVersion: 0 })).toMatchObject({ alreadyAppended: true });
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('does not close databases it was given', async () => {
    const store = await createPgliteEventStore({ databases: [databases[0]!] });
    await store.close();
    await expect(databases[0]!.query('select 1 as one')).resolves.toEqual({ rows: [{ one: 1 }] });
  });
});
