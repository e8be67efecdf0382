import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversationStreamId } from '../../commands/ids.js';
import { CONVERSATIONS_PROJECTION } from './projection.js';
import { createTestStack, dumpReadModel, type Adapter } from '../testing/stack.js';

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
