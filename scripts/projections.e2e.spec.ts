import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqlEventStore, type SqlEventStore } from '../infra/event-store/sql-event-store.js';
import { createPgliteDatabase } from '../infra/sql/pglite.js';
import type { SqlDatabase } from '../domain/ports/sql.js';
import { createPostgresDatabase } from '../infra/sql/postgres.js';
import { createTempDatabases } from '../infra/testing/postgres.js';
import { CONVERSATIONS_PROJECTION, conversationsProjection } from '../projections/conversations/projection.js';
import { createProjections } from '../projections/runtime/registry.js';
import { createProjector } from '../projections/runtime/runtime.js';
import { dumpReadModel } from '../projections/testing/stack.js';
import { ndjson, runCliProcess } from './testing/run-cli.js';
import { seedConversations } from './testing/seed.js';
import { conversationEvents } from '../projections/runtime/decode.js';

/**
 * `npm run projections` as a real process: the rebuild empties the read model and replays every
 * shard from position 0, and what it builds equals the read model the live projector built.
 */

type Setup = {
  env: Record<string, string>;
  /** Opens the databases in this process (the embedded one only while no CLI runs). */
  open(): Promise<{ store: SqlEventStore; dbs: SqlDatabase[]; close(): Promise<void> }>;
  cleanup(): Promise<void>;
};

async function postgresSetup(): Promise<Setup> {
  const temp = await createTempDatabases('projections_cli', 2);
  return {
    env: { DATABASE_URL: temp.urls.join(',') },
    async open() {
      const dbs = temp.urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 4 }));
      const store = await createSqlEventStore({ shards: dbs, ownsDatabases: true });
      return { store, dbs, close: () => store.close() };
    },
    cleanup: temp.drop,
  };
}

async function embeddedSetup(): Promise<Setup> {
  const dataDir = await mkdtemp(join(tmpdir(), 'projections-cli-'));
  return {
    env: { CHAT_DATA_DIR: dataDir },
    async open() {
      const db = await createPgliteDatabase({ dataDir: join(dataDir, 'db') });
      const store = await createSqlEventStore({ shards: [db], ownsDatabases: true });
      return { store, dbs: [db], close: () => store.close() };
    },
    cleanup: () => rm(dataDir, { recursive: true, force: true }),
  };
}

describe.each([
  ['PostgreSQL (2 shards)', postgresSetup, 8, 25],
  ['the embedded database', embeddedSetup, 2, 8],
] as const)('npm run projections on %s', (_name, makeSetup, groups, messagesPerGroup) => {
  let setup: Setup;
  let live: Record<string, unknown[]>;
  let heads: number[];

  beforeAll(async () => {
    setup = await makeSetup();
    const { store, dbs, close } = await setup.open();
    await seedConversations(store, { groups, messagesPerGroup });
    // The live read model, as the server's projector builds it.
    const projector = createProjector({ decode: conversationEvents, store, db: dbs[0]!, projections: createProjections(), batchSize: 50 });
    await projector.ensureSchema();
    await projector.catchUp();
    live = await dumpReadModel(dbs[0]!);
    heads = await Promise.all(dbs.map((_, shard) => store.headPosition(shard)));
    await close();
  }, 180_000);
  afterAll(async () => setup?.cleanup());

  const projections = (...args: string[]) => runCliProcess('projections', args, setup.env);

  it('rebuild NAME replays from 0 with progress on stderr, one JSON line on stdout, and equals the live read model', async () => {
    expect(live.rm_messages!.length).toBe(groups * messagesPerGroup);
    const result = await projections('rebuild', CONVERSATIONS_PROJECTION, '--progress', '--batch-size', '40');
    expect(result.code).toBe(0);
    const [line, ...more] = ndjson(result.stdout) as Record<string, unknown>[];
    expect(more).toEqual([]);
    const total = heads.reduce((a, b) => a + b, 0);
    expect(line).toMatchObject({ projection: CONVERSATIONS_PROJECTION, events: total, shards: heads.length });
    expect(line!.events_per_s).toBeGreaterThan(0);
    expect(result.stderr).toMatch(new RegExp(`rebuild conversations \\[#+\\] 100% ${total.toLocaleString('en-US')}/${total.toLocaleString('en-US')} events`));
    expect(result.stderr).toMatch(/rebuilt conversations: [\d,]+ events over \d shard\(s\) in [\d.]+ s \([\d,]+ events\/s\)\n$/);

    const { dbs, close } = await setup.open();
    try {
      expect(await dumpReadModel(dbs[0]!)).toEqual(live);
    } finally {
      await close();
    }

    const status = await projections('status', CONVERSATIONS_PROJECTION, '--json');
    expect(status.code).toBe(0);
    expect(ndjson(status.stdout)).toEqual(heads.map((head, shard) => ({ projection: CONVERSATIONS_PROJECTION, shard, checkpoint: head, head, lag: 0 })));
    const table = await projections('status', CONVERSATIONS_PROJECTION);
    expect(table.stdout.split('\n')[0]).toMatch(/^projection\s+shard\s+checkpoint\s+head\s+lag$/);
    expect(table.stdout.split('\n').filter((l) => l.startsWith(`${CONVERSATIONS_PROJECTION} `)).length).toBe(heads.length);
  }, 400_000);

  it('list shows the registered projections; a wrong command or name exits 2 with a clear message', async () => {
    const list = await projections('list', '--json');
    expect(list.code).toBe(0);
    // The server's list, search included (the server builds it with its search index; so does the CLI).
    const listed = ndjson(list.stdout) as { projection: string; tables: string[] }[];
    expect(listed.map((p) => p.projection)).toEqual(expect.arrayContaining([CONVERSATIONS_PROJECTION, 'search']));
    expect(listed.find((p) => p.projection === CONVERSATIONS_PROJECTION)!.tables).toEqual([...conversationsProjection.tables]);
    for (const [args, message] of [
      [['rebuild'], /rebuild needs a projection name: conversations, search/],
      [['rebuild', 'nope'], /unknown projection "nope"; known: conversations, search/],
      [['rewind'], /unknown command "rewind"/],
      [[], /a command is needed/],
      [['rebuild', CONVERSATIONS_PROJECTION, '--batch-size', '0'], /--batch-size must be an integer ≥ 1/],
    ] as const) {
      const result = await projections(...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  }, 400_000);
});
