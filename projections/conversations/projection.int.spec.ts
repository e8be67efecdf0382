import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversationStreamId } from '../../commands/ids.js';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import { createPgliteDatabase } from '../../infra/sql/pglite.js';
import type { SqlDatabase } from '../../domain/ports/sql.js';
import { createPostgresDatabase } from '../../infra/sql/postgres.js';
import { createTempDatabases } from '../../infra/testing/postgres.js';
import { CONVERSATIONS_PROJECTION, conversationsProjection } from './projection.js';
import { createTestStack, dumpReadModel, type Adapter } from '../testing/stack.js';
import { conversationEvents } from '../runtime/decode.js';

const [alice, bob, carol, dave] = ['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b', '00000000-0000-4000-8000-00000000000c', '00000000-0000-4000-8000-00000000000d'];

describe.each<[Adapter, number]>([
  ['pglite', 1],
  ['postgres', 2],
])('conversations read model on %s (%i shards)', (adapter, shards) => {
  let stack: Awaited<ReturnType<typeof createTestStack>>;

  beforeAll(async () => {
    stack = await createTestStack(adapter, { shards });
    stack.users.register(alice, bob, carol, dave);
  });
  afterAll(async () => stack?.close());

  /** Sends and waits for the projection, as the REST API does (read-your-writes). */
  async function send(actor: string, conversationId: string, content: string, clientMessageId: string | null = null) {
    const sent = await stack.commands.sendMessage(actor, conversationId, { content, content_type: 'text', media: null, client_message_id: clientMessageId });
    if (sent.position) expect(await stack.projector.waitFor(CONVERSATIONS_PROJECTION, sent.position, 5_000)).toBe(true);
    return sent.message;
  }
  async function settle(position: { shard: number; position: number } | null) {
    if (position) expect(await stack.projector.waitFor(CONVERSATIONS_PROJECTION, position, 5_000)).toBe(true);
  }

  it('serves history in order, with reactions, right after the send (read-your-writes)', async () => {
    const { conversation } = await stack.commands.openDirect(alice, bob);
    const sent = [];
    for (const text of ['one', 'two', 'three']) sent.push(await send(alice, conversation.conversation_id, text));
    const history = await stack.queries.history(conversation.conversation_id, { limit: 50 });
    expect(history.messages.map((m) => m.content)).toEqual(['one', 'two', 'three']);
    expect(history.messages.map((m) => m.sequence_number)).toEqual(sent.map((m) => m.sequence_number));
    expect(history.messages[0]).toMatchObject({ sender_id: alice, content_type: 'text', created_at: sent[0]!.created_at });

    const reacted = await stack.commands.react(bob, conversation.conversation_id, sent[1]!, '🎉', 'add');
    await settle(reacted.position);
    const page = await stack.queries.history(conversation.conversation_id, { limit: 2 });
    expect(page.has_more).toBe(true);
    expect(page.messages.map((m) => m.content)).toEqual(['two', 'three']);
    expect(page.messages[0]!.reactions).toEqual([{ emoji: '🎉', count: 1, user_ids: [bob] }]);
    const older = await stack.queries.history(conversation.conversation_id, { limit: 2, beforeSequence: page.messages[0]!.sequence_number });
    expect(older).toMatchObject({ has_more: false, messages: [{ content: 'one' }] });
  });

  it('counts unread messages from the read watermark and reports status per recipient', async () => {
    const { conversation } = await stack.commands.createGroup(alice, { name: 'team', description: null, member_ids: [bob, carol] });
    const id = conversation.conversation_id;
    const m1 = await send(alice, id, 'hello');
    const m2 = await send(alice, id, 'anyone?');

    const bobInbox = await stack.queries.inbox(bob, { limit: 50 });
    const entry = bobInbox.find((c) => c.conversation_id === id)!;
    expect(entry).toMatchObject({ type: 'group', name: 'team', unread_count: 2, last_message: { message_id: m2.message_id, content: 'anyone?' } });
    expect(entry.participants.find((p) => p.user_id === alice)?.role).toBe('admin');

    await settle((await stack.commands.markWatermark(carol, id, { device_id: 'phone', up_to_version: m2.sequence_number, kind: 'delivered' })).position);
    await settle((await stack.commands.markWatermark(bob, id, { device_id: 'phone', up_to_version: m1.sequence_number, kind: 'read' })).position);

    expect((await stack.queries.inbox(bob, { limit: 50 })).find((c) => c.conversation_id === id)?.unread_count).toBe(1);
    const s1 = await stack.queries.messageStatus(m1.message_id);
    expect(s1).toMatchObject({ sender_id: alice, status: 'delivered', recipient_count: 2, delivered_count: 2, read_count: 1 });
    expect(s1!.recipients.map((r) => [r.user_id, r.status])).toEqual(
      [
        [bob, 'read'],
        [carol, 'delivered'],
      ].sort(),
    );
    const s2 = await stack.queries.messageStatus(m2.message_id);
    expect(s2).toMatchObject({ status: 'sent', delivered_count: 1, read_count: 0 });

    await settle((await stack.commands.markWatermark(bob, id, { device_id: 'phone', up_to_version: m2.sequence_number, kind: 'read' })).position);
    await settle((await stack.commands.markWatermark(carol, id, { device_id: 'laptop', up_to_version: m2.sequence_number, kind: 'read' })).position);
    expect(await stack.queries.messageStatus(m2.message_id)).toMatchObject({ status: 'read', read_count: 2 });
    expect((await stack.queries.inbox(bob, { limit: 50 })).find((c) => c.conversation_id === id)?.unread_count).toBe(0);
  });

  it('drops a removed member from the inbox and from the recipients of later messages', async () => {
    const { conversation } = await stack.commands.createGroup(alice, { name: 'club', description: 'd', member_ids: [bob, dave] });
    const id = conversation.conversation_id;
    const before = await send(alice, id, 'before');
    await settle((await stack.commands.removeMember(alice, id, dave)).position);
    const after = await send(alice, id, 'after');
    expect((await stack.queries.inbox(dave, { limit: 50 })).some((c) => c.conversation_id === id)).toBe(false);
    expect((await stack.queries.messageStatus(before.message_id))!.recipients.map((r) => r.user_id).sort()).toEqual([bob, dave].sort());
    expect((await stack.queries.messageStatus(after.message_id))!.recipients.map((r) => r.user_id)).toEqual([bob]);
  });

  it('lists the contacts of a user: members of their active conversations, distinct, sorted, without themselves', async () => {
    const [e, f, g, h] = ['e1', 'f1', 'f2', 'f3'].map((x) => `00000000-0000-4000-8000-0000000000${x}`) as [string, string, string, string];
    stack.users.register(e, f, g, h);
    await settle((await stack.commands.openDirect(e, f)).position);
    const { conversation } = await stack.commands.createGroup(e, { name: 'contacts', description: 'd', member_ids: [f, g, h] });
    await settle((await stack.commands.removeMember(e, conversation.conversation_id, h)).position);
    expect(await stack.queries.contacts(e, { limit: 10 })).toEqual([f, g]);
    expect(await stack.queries.contacts(f, { limit: 10 })).toEqual([e, g]);
    expect(await stack.queries.contacts(h, { limit: 10 })).toEqual([]);
    expect(await stack.queries.contacts(g, { limit: 1 })).toEqual([e]);
    expect(await stack.queries.isContact(e, g)).toBe(true);
    expect(await stack.queries.isContact(g, f)).toBe(true);
    expect(await stack.queries.isContact(e, h)).toBe(false); // removed
    expect(await stack.queries.isContact(h, e)).toBe(false);
    expect(await stack.queries.isContact(e, e)).toBe(false);
  });

  it('a retried send appends nothing and returns the original message', async () => {
    const { conversation } = await stack.commands.openDirect(carol, dave);
    const first = await send(carol, conversation.conversation_id, 'once', 'client-1');
    const versionBefore = await stack.store.streamVersion(conversationStreamId(conversation.conversation_id));
    const again = await stack.commands.sendMessage(carol, conversation.conversation_id, {
      content: 'once',
      content_type: 'text',
      media: null,
      client_message_id: 'client-1',
    });
    expect(again.created).toBe(false);
    expect(again.message).toEqual(first);
    expect(await stack.store.streamVersion(conversationStreamId(conversation.conversation_id))).toBe(versionBefore);
  });

  it('concurrent sends from two command processes give contiguous versions, none lost or doubled', async () => {
    // A second command service over the same store stands for a second API process: its stream
    // worker and state cache are its own, so only optimistic concurrency keeps them consistent.
    const { createConversationCommands } = await import('../../commands/conversations.js');
    const other = createConversationCommands({ store: stack.store, users: stack.users, clock: () => new Date() });
    const { conversation } = await stack.commands.openDirect(alice, dave);
    const id = conversation.conversation_id;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 === 0 ? stack.commands : other).sendMessage(i % 3 === 0 ? alice : dave, id, { content: `m${i}`, content_type: 'text', media: null, client_message_id: `c${i}` }),
      ),
    );
    const seqs = results.map((r) => r.message.sequence_number).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 2)); // version 1 is ConversationCreated
    const stream = await stack.store.readStream(conversationStreamId(id));
    expect(stream.filter((e) => e.type === 'MessageSent').map((e) => (e.data as { content: string }).content).sort()).toEqual(
      Array.from({ length: 50 }, (_, i) => `m${i}`).sort(),
    );
  });

  it('a rebuild from position 0 equals the live read model', async () => {
    await stack.projector.catchUp();
    const live = await dumpReadModel(stack.readModels);
    expect(live.rm_messages!.length).toBeGreaterThan(50);
    await stack.projector.stop();
    await stack.projector.reset(CONVERSATIONS_PROJECTION);
    expect((await dumpReadModel(stack.readModels)).rm_messages).toEqual([]);
    await stack.projector.catchUp();
    expect(await dumpReadModel(stack.readModels)).toEqual(live);
    await stack.projector.start();
  });
});

describe.each<Adapter>(['pglite', 'postgres'])('conversations projection batches on %s', (adapter) => {
  let dbs: SqlDatabase[] = [];
  let drop = async () => {};

  beforeAll(async () => {
    if (adapter === 'pglite') dbs = await Promise.all([0, 1, 2].map(() => createPgliteDatabase()));
    else {
      const temp = await createTempDatabases('proj_batch', 3);
      drop = temp.drop;
      dbs = temp.urls.map((connectionString) => createPostgresDatabase({ connectionString, max: 2 }));
    }
    for (const db of dbs) await db.exec(conversationsProjection.schema);
  });
  afterAll(async () => {
    await Promise.allSettled(dbs.map((db) => db.close()));
    await drop();
  });

  /** A log of two conversations, interleaved, with every kind of event and the orderings a batch must keep. */
  function log(): StoredEvent[] {
    const [g, d] = ['group-1', 'direct-1'];
    const versions = new Map<string, number>();
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString();
    const out: StoredEvent[] = [];
    const e = (conversation: string, type: string, data: unknown) => {
      const version = (versions.get(conversation) ?? 0) + 1;
      versions.set(conversation, version);
      out.push({ event_id: `e${out.length + 1}`, type, data, metadata: {}, stream_id: `conversation-${conversation}`, version, shard: 0, position: out.length + 1, created_at: at(out.length) });
    };
    const msg = (conversation: string, id: string, sender: string, s: number, content = `text of ${id}`) =>
      e(conversation, 'MessageSent', { message_id: id, sender_id: sender, content, content_type: 'text', media: null, client_message_id: null, created_at: at(s) });
    const reaction = (type: 'ReactionAdded' | 'ReactionRemoved', user: string, emoji: string, s: number, message_id = 'm1') =>
      e(g, type, { message_id, message_version: 2, user_id: user, emoji, at: at(s) });
    const mark = (conversation: string, type: 'Delivered' | 'Read', user: string, upTo: number, s: number) =>
      e(conversation, type, { user_id: user, device_id: 'phone', up_to_version: upTo, at: at(s) });

    e(g, 'ConversationCreated', { conversation_id: g, kind: 'group', created_by: alice, members: [alice, bob, carol], name: 'g', description: null, created_at: at(1) });
    e(d, 'ConversationCreated', { conversation_id: d, kind: 'direct', created_by: bob, members: [bob, dave], name: null, description: null, created_at: at(2) });
    msg(g, 'm1', alice, 3, 'x'.repeat(300));
    msg(d, 'm2', bob, 4, 'NULL');
    reaction('ReactionAdded', bob, '👍', 5); // add + remove + add of one reaction: the last add's time stays
    mark(g, 'Read', bob, 2, 6);
    reaction('ReactionRemoved', bob, '👍', 7);
    mark(g, 'Read', bob, 1, 8); // two Read watermarks of one user: the higher one stays
    reaction('ReactionAdded', bob, '👍', 9);
    reaction('ReactionAdded', bob, '👍', 10); // a second add changes nothing
    reaction('ReactionAdded', carol, '🎉', 11);
    msg(g, 'm3', bob, 30);
    e(g, 'MemberRemoved', { user_id: alice, removed_by: alice, removed_at: at(12) }); // the admin leaves between two messages
    msg(g, 'm4', carol, 13);
    mark(g, 'Delivered', carol, 4, 14);
    mark(g, 'Delivered', alice, 4, 15); // a former member's watermark still moves
    reaction('ReactionRemoved', carol, '🎉', 16); // remove then add
    reaction('ReactionAdded', carol, '🎉', 17);
    reaction('ReactionRemoved', dave, '😢', 18); // removing what is not there
    reaction('ReactionAdded', carol, '🔥', 19);
    reaction('ReactionRemoved', carol, '🔥', 20); // add then remove
    mark(d, 'Read', dave, 2, 21);
    mark(d, 'Delivered', dave, 2, 22); // the same receipt twice: the first one's time stays
    e(g, 'MembersAdded', { user_ids: [dave, alice], added_by: bob, added_at: at(23) });
    mark(g, 'Read', dave, 6, 24);
    msg(g, 'm5', dave, 25);
    reaction('ReactionAdded', dave, '👍', 26, 'm5');
    mark(d, 'Delivered', bob, 2, 27); // ends with a receipt: version moves, updated_at does not
    return out;
  }

  async function build(db: SqlDatabase, batches: StoredEvent[][]) {
    for (const batch of batches) await db.transaction((tx) => conversationsProjection.apply(tx, conversationEvents(batch)));
    return dumpReadModel(db);
  }

  it('one batch, a batch cut anywhere and one event per batch build the same read model', async () => {
    const events = log();
    const oneByOne = await build(dbs[0]!, events.map((e) => [e]));
    expect(oneByOne.rm_reactions!.length).toBe(3);
    expect(oneByOne.rm_messages!.length).toBe(5);
    // What applying the events one by one means, pinned (so a bug shared by both paths shows too).
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString();
    const one = async (sql: string) => JSON.parse(JSON.stringify((await dbs[0]!.query(sql)).rows));
    expect(await one(`SELECT conversation_id, version, updated_at, last_message_id, last_message_seq, length(last_message_content) AS preview FROM rm_conversations ORDER BY 1`)).toEqual([
      { conversation_id: 'direct-1', version: 5, updated_at: at(4), last_message_id: 'm2', last_message_seq: 2, preview: 4 },
      { conversation_id: 'group-1', version: 23, updated_at: at(25), last_message_id: 'm5', last_message_seq: 22, preview: 10 },
    ]);
    expect(await one(`SELECT message_id, user_id, emoji, created_at FROM rm_reactions ORDER BY 1, 2, 3`)).toEqual([
      { message_id: 'm1', user_id: bob, emoji: '👍', created_at: at(9) },
      { message_id: 'm1', user_id: carol, emoji: '🎉', created_at: at(17) },
      { message_id: 'm5', user_id: dave, emoji: '👍', created_at: at(26) },
    ]);
    expect(await one(`SELECT conversation_id, user_id, role, active, delivered_up_to, read_up_to FROM rm_members ORDER BY 1, 2`)).toEqual([
      { conversation_id: 'direct-1', user_id: bob, role: 'member', active: true, delivered_up_to: 2, read_up_to: 0 },
      { conversation_id: 'direct-1', user_id: dave, role: 'member', active: true, delivered_up_to: 2, read_up_to: 2 },
      { conversation_id: 'group-1', user_id: alice, role: 'member', active: true, delivered_up_to: 4, read_up_to: 0 },
      { conversation_id: 'group-1', user_id: bob, role: 'admin', active: true, delivered_up_to: 2, read_up_to: 2 },
      { conversation_id: 'group-1', user_id: carol, role: 'member', active: true, delivered_up_to: 4, read_up_to: 0 },
      { conversation_id: 'group-1', user_id: dave, role: 'member', active: true, delivered_up_to: 6, read_up_to: 6 },
    ]);
    expect(await one(`SELECT at FROM rm_receipts WHERE conversation_id = 'direct-1' AND user_id = '${dave}' AND kind = 'delivered'`)).toEqual([{ at: at(21) }]);
    expect(await build(dbs[1]!, [events])).toEqual(oneByOne);
    // Cut in the middle of the reaction sequence, so the second batch starts from existing rows.
    expect(await build(dbs[2]!, [events.slice(0, 8), events.slice(8)])).toEqual(oneByOne);
  });
});
