import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import { createPgliteDatabase } from '../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { dumpReadModel } from '../testing/stack.js';
import { conversationsProjection } from './projection.js';
import { conversationEvents } from '../runtime/decode.js';

/**
 * Membership changes are applied inside a batch's run, not between runs (projection.ts, Pending):
 * every way of cutting a log with membership changes among messages and watermarks must build
 * the read model that applying the events one by one builds.
 */
const [alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'];
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString();

function log(): StoredEvent[] {
  const out: StoredEvent[] = [];
  const versions = new Map<string, number>();
  const e = (c: string, type: string, data: unknown) => {
    const version = (versions.get(c) ?? 0) + 1;
    versions.set(c, version);
    out.push({ event_id: `e${out.length + 1}`, type, data, metadata: {}, stream_id: `conversation-${c}`, version, shard: 0, position: out.length + 1, created_at: at(out.length) });
  };
  const msg = (c: string, id: string, sender: string, s: number) =>
    e(c, 'MessageSent', { message_id: id, sender_id: sender, content: id, content_type: 'text', media: null, client_message_id: null, created_at: at(s) });
  e('g', 'ConversationCreated', { conversation_id: 'g', kind: 'group', created_by: alice, members: [alice, bob, carol], name: 'g', description: null, created_at: at(1) });
  msg('g', 'm1', alice, 10);
  e('g', 'Read', { user_id: bob, device_id: 'p', up_to_version: 2, at: at(11) });
  e('g', 'MemberRemoved', { user_id: alice, removed_by: alice, removed_at: at(20) }); // later than the last message: updated_at moves to it
  e('g', 'Delivered', { user_id: alice, device_id: 'p', up_to_version: 2, at: at(21) }); // a former member's watermark
  e('g', 'MembersAdded', { user_ids: [dave], added_by: bob, added_at: at(15) }); // earlier than the removal: updated_at stays
  e('g', 'Read', { user_id: dave, device_id: 'p', up_to_version: 2, at: at(22) }); // the new member's first watermark
  e('g', 'MemberRemoved', { user_id: bob, removed_by: bob, removed_at: at(23) }); // the new admin leaves too: carol (joined at 1) takes over
  e('g', 'MembersAdded', { user_ids: [alice, bob], added_by: carol, added_at: at(24) }); // both come back as members
  e('h', 'ConversationCreated', { conversation_id: 'h', kind: 'group', created_by: dave, members: [dave, carol], name: 'h', description: null, created_at: at(2) });
  e('h', 'MemberRemoved', { user_id: dave, removed_by: dave, removed_at: at(25) }); // removed in the run that creates it
  msg('g', 'm2', carol, 26);
  e('g', 'MemberRemoved', { user_id: dave, removed_by: carol, removed_at: at(5) }); // an old clock: updated_at keeps m2's time
  return out;
}

describe('conversations projection: membership changes inside a batch (PGlite)', () => {
  let db: SqlDatabase;
  const events = log();

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await db.exec(conversationsProjection.schema);
  }, 120_000);
  afterAll(async () => {
    await db?.close();
  });

  /** Empties the read model, applies the batches, returns what they built. */
  async function build(batches: StoredEvent[][]) {
    for (const table of conversationsProjection.tables) await db.query(`DELETE FROM ${table}`);
    for (const batch of batches) await db.transaction((tx) => conversationsProjection.apply(tx, conversationEvents(batch)));
    return dumpReadModel(db);
  }

  it('one event per batch, one batch, and every cut in two build the same read model', { timeout: 120_000 }, async () => {
    const oneByOne = await build(events.map((e) => [e]));
    const q = async (sql: string) => JSON.parse(JSON.stringify((await db.query(sql)).rows)) as unknown;
    expect(await q(`SELECT conversation_id, version, updated_at FROM rm_conversations ORDER BY 1`)).toEqual([
      { conversation_id: 'g', version: 11, updated_at: at(26) },
      { conversation_id: 'h', version: 2, updated_at: at(25) },
    ]);
    expect(await q(`SELECT conversation_id, user_id, role, active, joined_version, left_version, delivered_up_to, read_up_to FROM rm_members ORDER BY 1, 2`)).toEqual([
      { conversation_id: 'g', user_id: alice, role: 'member', active: true, joined_version: 9, left_version: null, delivered_up_to: 2, read_up_to: 0 },
      { conversation_id: 'g', user_id: bob, role: 'member', active: true, joined_version: 9, left_version: null, delivered_up_to: 2, read_up_to: 2 },
      { conversation_id: 'g', user_id: carol, role: 'admin', active: true, joined_version: 1, left_version: null, delivered_up_to: 0, read_up_to: 0 },
      { conversation_id: 'g', user_id: dave, role: 'member', active: false, joined_version: 6, left_version: 11, delivered_up_to: 2, read_up_to: 2 },
      { conversation_id: 'h', user_id: carol, role: 'admin', active: true, joined_version: 1, left_version: null, delivered_up_to: 0, read_up_to: 0 },
      { conversation_id: 'h', user_id: dave, role: 'member', active: false, joined_version: 1, left_version: 2, delivered_up_to: 0, read_up_to: 0 },
    ]);
    expect(await build([events])).toEqual(oneByOne);
    for (let cut = 1; cut < events.length; cut++) {
      // eslint-disable-next-line no-await-in-loop
      expect({ cut, model: await build([events.slice(0, cut), events.slice(cut)]) }).toEqual({ cut, model: oneByOne });
    }
  });
});
