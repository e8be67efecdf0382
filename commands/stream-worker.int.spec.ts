import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../domain/errors.js';
import type { EventStore, ReadStreamOptions } from '../domain/ports/event-store.js';
import { createTestStack } from '../projections/testing/stack.js';
import { createConversationCommands, type ConversationCommands } from './conversations.js';
import { conversationStreamId } from './ids.js';

const [alice, bob, carol, dave] = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-0000000000d1'];

/** The store as one process sees it, with every stream read it makes recorded. */
function recordingReads(store: EventStore) {
  const reads: { streamId: string; from: number }[] = [];
  const recorded = new Proxy(store, {
    get(target, property) {
      if (property === 'readStream') {
        return (streamId: string, options?: ReadStreamOptions) => {
          reads.push({ streamId, from: options?.from ?? 1 });
          return target.readStream(streamId, options);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: recorded, reads };
}

const text = (content: string, clientMessageId: string | null = null) => ({ content, content_type: 'text' as const, media: null, client_message_id: clientMessageId });

/**
 * Two command sides over one PostgreSQL store stand for two processes (two gateways, or a gateway
 * and the API): each has its own stream worker and cached states, so a state one of them cached
 * goes stale whenever the other appends.
 */
describe('stream worker: cached states and appends of other processes (PostgreSQL)', () => {
  let stack: Awaited<ReturnType<typeof createTestStack>>;
  let a: ConversationCommands;
  let b: ConversationCommands;
  let readsOfA: { streamId: string; from: number }[];

  beforeAll(async () => {
    stack = await createTestStack('postgres', { startProjector: false });
    stack.users.register(alice, bob, carol, dave);
    const recorded = recordingReads(stack.store);
    readsOfA = recorded.reads;
    a = createConversationCommands({ store: recorded.store, users: stack.users, clock: () => new Date() });
    b = createConversationCommands({ store: stack.store, users: stack.users, clock: () => new Date() });
  });
  afterAll(async () => stack?.close());

  const readsOf = (conversationId: string) => readsOfA.filter((r) => r.streamId === conversationStreamId(conversationId));

  it('a warm stream takes sends without reading the store first', async () => {
    const { conversation } = await a.openDirect(alice, bob);
    const id = conversation.conversation_id;
    const readsAfterOpen = readsOf(id).length;

    const seqs = [];
    for (let i = 0; i < 5; i++) seqs.push((await a.sendMessage(alice, id, text(`m${i}`))).message.sequence_number);

    expect(seqs).toEqual([2, 3, 4, 5, 6]);
    expect(readsOf(id).length).toBe(readsAfterOpen);
  });

  it('after another process appended, a send lands at the next version, caught up by reading only what is new', async () => {
    const { conversation } = await a.openDirect(alice, carol);
    const id = conversation.conversation_id;
    await a.sendMessage(alice, id, text('one')); // version 2, cached in A
    await b.sendMessage(carol, id, text('two')); // version 3, A's cache does not know it
    const before = readsOf(id).length;

    const third = await a.sendMessage(alice, id, text('three'));

    expect(third.message.sequence_number).toBe(4);
    const stream = await stack.store.readStream(conversationStreamId(id));
    expect(stream.map((e) => [e.version, e.type, (e.data as { content?: string }).content ?? null])).toEqual([
      [1, 'ConversationCreated', null],
      [2, 'MessageSent', 'one'],
      [3, 'MessageSent', 'two'],
      [4, 'MessageSent', 'three'],
    ]);
    // The refused append's folded events were taken back: the catch-up starts at version 3, not 1.
    expect(readsOf(id).slice(before)).toEqual([{ streamId: conversationStreamId(id), from: 3 }]);
  });

  it('a member added through another process can send through a process whose cached state predates it', async () => {
    const { conversation } = await a.createGroup(alice, { name: 'team', description: null, member_ids: [bob] });
    const id = conversation.conversation_id;
    await a.sendMessage(alice, id, text('hello'));
    await b.addMembers(alice, id, [carol]);

    const sent = await a.sendMessage(carol, id, text('hi, I am new'));

    expect(sent.message.sequence_number).toBe(4);
    expect(sent.message.sender_id).toBe(carol);
  });

  it('a member removed through another process is refused, though the cached state still lists them', async () => {
    const { conversation } = await a.createGroup(alice, { name: 'team', description: null, member_ids: [bob, dave] });
    const id = conversation.conversation_id;
    await a.sendMessage(dave, id, text('still here'));
    await b.removeMember(alice, id, dave);

    const refused = await a.sendMessage(dave, id, text('gone?')).catch((error: unknown) => error);

    expect(refused).toBeInstanceOf(DomainError);
    expect((refused as DomainError).code).toBe('conversation_not_found');
    expect(await stack.store.streamVersion(conversationStreamId(id))).toBe(3);
  });

  it('a client message id already used through another process gives back the original, appending nothing', async () => {
    const { conversation } = await a.openDirect(bob, dave);
    const id = conversation.conversation_id;
    await a.sendMessage(bob, id, text('first'));
    const original = await b.sendMessage(bob, id, text('retried', 'client-1'));

    const again = await a.sendMessage(bob, id, text('retried', 'client-1'));

    expect(again.created).toBe(false);
    expect(again.message.sequence_number).toBe(original.message.sequence_number);
    expect(again.message.message_id).toBe(original.message.message_id);
    expect(await stack.store.streamVersion(conversationStreamId(id))).toBe(3);
  });

  it('a reaction is checked against the store: the message is found by id and sequence number, even one sent through another process', async () => {
    const { conversation } = await a.openDirect(carol, bob);
    const id = conversation.conversation_id;
    const mine = await a.sendMessage(carol, id, text('from A'));
    const theirs = await b.sendMessage(bob, id, text('from B')); // A's cached state stops before it

    expect((await a.react(carol, id, theirs.message, '👍', 'add')).changed).toBe(true);
    expect((await a.react(carol, id, theirs.message, '👍', 'add')).changed).toBe(false);
    expect((await a.react(bob, id, mine.message, '🎉', 'add')).changed).toBe(true);

    const refusal = (message: { message_id: string; sequence_number: number }) =>
      a.react(carol, id, message, '👍', 'add').then(
        () => 'accepted',
        (error: unknown) => (error instanceof DomainError ? error.code : error),
      );
    expect(await refusal({ message_id: mine.message.message_id, sequence_number: theirs.message.sequence_number })).toBe('message_not_found');
    expect(await refusal({ message_id: mine.message.message_id, sequence_number: 1 })).toBe('message_not_found'); // the creation
    expect(await refusal({ message_id: mine.message.message_id, sequence_number: 99 })).toBe('message_not_found'); // past the end
    const reactions = (await stack.store.readStream(conversationStreamId(id))).filter((e) => e.type === 'ReactionAdded');
    expect(reactions.map((e) => (e.data as { message_version: number }).message_version)).toEqual([theirs.message.sequence_number, mine.message.sequence_number]);
  });

  it('a stream written in turns by two processes is read before each command instead of refused at every other append, and trusted again once left to one', async () => {
    const { conversation } = await a.openDirect(alice, dave);
    const id = conversation.conversation_id;
    const conflictsBefore = stack.store.stats().conflicts;

    for (let i = 0; i < 20; i++) await (i % 2 === 0 ? a : b).sendMessage(i % 2 === 0 ? alice : dave, id, text(`turn ${i}`));

    // in each process the first send after the other's is refused; from then on each reads first
    // (and finds the other's event) instead of trusting its cache
    expect(stack.store.stats().conflicts - conflictsBefore).toBe(2);

    // left to A alone: its reads find nothing, and after a few it trusts its cache again
    for (let i = 0; i < 20; i++) await a.sendMessage(alice, id, text(`alone ${i}`));
    const readsBefore = readsOf(id).length;
    for (let i = 0; i < 10; i++) await a.sendMessage(alice, id, text(`trusted ${i}`));
    expect(readsOf(id).length).toBe(readsBefore);
    expect(await stack.store.streamVersion(conversationStreamId(id))).toBe(51);
  });

  it('200 sends racing through both processes get contiguous versions, each message once', async () => {
    const { conversation } = await a.openDirect(carol, dave);
    const id = conversation.conversation_id;

    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).sendMessage(i % 3 === 0 ? carol : dave, id, text(`m${i}`, `c${i}`))),
    );

    expect(results.map((r) => r.message.sequence_number).sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 2));
    const stream = await stack.store.readStream(conversationStreamId(id));
    expect(stream.filter((e) => e.type === 'MessageSent').map((e) => (e.data as { content: string }).content).sort()).toEqual(
      Array.from({ length: 200 }, (_, i) => `m${i}`).sort(),
    );
  });
});
