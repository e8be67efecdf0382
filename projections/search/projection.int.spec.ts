import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteEventStore } from '../../infra/event-store/pglite.js';
import type { NewEvent } from '../../domain/ports/event-store.js';
import type { SqlEventStore } from '../../infra/event-store/sql-event-store.js';
import { createPostgresSearchIndex } from '../../infra/search/postgres.js';
import { createPgliteDatabase } from '../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createProjector, type Projector } from '../runtime/runtime.js';
import { createSearchProjection, SEARCH_PROJECTION } from './projection.js';
import { createSearchQueries } from './queries.js';
import { conversationEvents } from '../runtime/decode.js';

/** The search projection through the projector runtime: membership intervals, replays, rebuilds. */
describe('search projection', { timeout: 60_000 }, () => {
  let db: SqlDatabase;
  let store: SqlEventStore;
  let projector: Projector;
  let queries: ReturnType<typeof createSearchQueries>;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    store = await createPgliteEventStore({ databases: [db] });
    const index = createPostgresSearchIndex({ db });
    projector = createProjector({ store, db, projections: [createSearchProjection({ index })], batchSize: 3, decode: conversationEvents });
    await projector.ensureSchema();
    queries = createSearchQueries({ db, index, cursorKey: randomBytes(32) });
  }, 180_000);
  afterAll(async () => {
    await store?.close();
    await db?.close();
  });

  const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString();
  const event = (type: string, data: unknown): NewEvent => ({ event_id: randomUUID(), type, data });
  const message = (id: string, sender: string, content: string, n: number) =>
    event('MessageSent', { message_id: id, sender_id: sender, content, content_type: 'text', media: null, client_message_id: null, created_at: at(n) });
  const find = async (user: string, text: string) => (await queries.search({ userId: user, text, limit: 50 })).hits.map((h) => h.message_id).sort();

  it('keeps membership intervals by version: removed, re-added, joined late', async () => {
    const c = randomUUID();
    await store.append(
      `conversation-${c}`,
      [
        event('ConversationCreated', { conversation_id: c, kind: 'group', created_by: 'a', members: ['a', 'b'], name: 'g', description: null, created_at: at(0) }),
        message('m2', 'a', 'alpha one', 1),
        event('MemberRemoved', { user_id: 'b', removed_by: 'a', removed_at: at(2) }),
        message('m4', 'a', 'alpha two', 3),
        event('MembersAdded', { user_ids: ['b', 'c'], added_by: 'a', added_at: at(4) }),
        message('m6', 'a', 'alpha three', 5),
        event('ReactionAdded', { message_id: 'm6', message_version: 6, user_id: 'b', emoji: '👍', at: at(6) }),
      ],
      { expectedVersion: 0 },
    );
    await projector.catchUp();
    expect(await find('a', 'alpha')).toEqual(['m2', 'm4', 'm6']);
    expect(await find('b', 'alpha')).toEqual(['m2', 'm6']);
    expect(await find('c', 'alpha')).toEqual(['m6']);
    expect(await find('nobody', 'alpha')).toEqual([]);
  });

  it('a rebuild from position 0 gives the same index and intervals as the live run', async () => {
    const dump = async () => ({
      members: (await db.query('SELECT conversation_id, user_id, from_version, to_version FROM search_members ORDER BY 1, 2, 3')).rows,
      messages: (await db.query('SELECT message_id, conversation_id, sequence_number, sender_id, created_at, content, tsv::text FROM search_messages ORDER BY 1')).rows,
    });
    const live = await dump();
    expect(live.messages.length).toBeGreaterThan(0);
    await projector.reset(SEARCH_PROJECTION);
    expect((await dump()).messages).toEqual([]);
    await projector.catchUp();
    expect(await dump()).toEqual(live);
  });

  it('applying a batch twice (at-least-once) changes nothing', async () => {
    const before = (await db.query('SELECT * FROM search_members ORDER BY 1, 2, 3')).rows;
    const events = await store.readLog(0, { after: 0, maxCount: 1000 });
    const projection = createSearchProjection({ index: createPostgresSearchIndex({ db }) });
    await db.transaction((tx) => projection.apply(tx, conversationEvents(events)));
    expect((await db.query('SELECT * FROM search_members ORDER BY 1, 2, 3')).rows).toEqual(before);
    expect(await find('b', 'alpha')).toEqual(['m2', 'm6']);
  });
});
