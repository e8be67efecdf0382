import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../domain/errors.js';
import type { EventStore, ReadStreamOptions } from '../domain/ports/event-store.js';
import { CONVERSATIONS_PROJECTION } from '../projections/conversations/projection.js';
import { createTestStack } from '../projections/testing/stack.js';
import { createConversationCommands, type ConversationCommands, type Position } from './conversations.js';
import { conversationStreamId } from './ids.js';

const [alice, bob, carol, dave, erin] = ['a1', 'b1', 'c1', 'd1', 'e1'].map((s) => `00000000-0000-4000-8000-0000000000${s}`) as [string, string, string, string, string];
const text = (content: string) => ({ content, content_type: 'text' as const, media: null, client_message_id: null });

/** The store as a fresh process sees it (nothing cached), with every stream read recorded. */
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

const codeOf = (work: Promise<unknown>) =>
  work.then(
    () => 'accepted',
    (error: unknown) => (error instanceof DomainError ? error.code : String(error)),
  );

/**
 * The command side refuses strangers before it reads a stream: with the read model's
 * memberships, a request from someone who was never a member of a conversation this process does
 * not hold costs an index lookup, not a replay of the conversation; the answers stay the domain's.
 */
describe('command side: strangers are refused without reading the stream (PGlite)', () => {
  let stack: Awaited<ReturnType<typeof createTestStack>>;
  let groupId: string;
  let groupMessage: { message_id: string; sequence_number: number };

  const settle = async (position: Position | null) => {
    if (position !== null) expect(await stack.projector.waitFor(CONVERSATIONS_PROJECTION, position, 10_000)).toBe(true);
  };
  /** A process that has just started: its own stream worker, nothing cached. */
  const freshProcess = () => {
    const recorded = recordingReads(stack.store);
    const commands: ConversationCommands = createConversationCommands({ store: recorded.store, users: stack.users, clock: () => new Date(), memberships: stack.queries });
    const of = (id: string) => recorded.reads.filter((r) => r.streamId === conversationStreamId(id));
    return { commands, readsOf: (id: string) => of(id).length, fromsOf: (id: string) => of(id).map((r) => r.from) };
  };

  beforeAll(async () => {
    stack = await createTestStack('pglite');
    stack.users.register(alice, bob, carol, dave, erin);
    const created = await stack.commands.createGroup(alice, { name: 'busy', description: null, member_ids: [bob, dave] });
    groupId = created.conversation.conversation_id;
    let last = created.position;
    for (let i = 0; i < 40; i++) {
      const sent = await stack.commands.sendMessage(alice, groupId, text(`m${i}`));
      groupMessage = sent.message;
      last = sent.position;
    }
    last = (await stack.commands.removeMember(alice, groupId, dave)).position;
    await settle(last);
  }, 60_000);
  afterAll(async () => stack?.close());

  it('answers every request of a stranger as an unknown conversation\'s (the domain\'s 404), reading no stream', async () => {
    const { commands, readsOf } = freshProcess();
    const unknown = '00000000-0000-4000-8000-00000000ffff';
    expect(await codeOf(commands.access(carol, groupId))).toBe('conversation_not_found');
    expect(await codeOf(commands.otherMembers(carol, groupId))).toBe('conversation_not_found');
    expect(await codeOf(commands.describe(carol, groupId))).toBe('conversation_not_found');
    expect(await codeOf(commands.sendMessage(carol, groupId, text('let me in')))).toBe('conversation_not_found');
    expect(await codeOf(commands.markWatermark(carol, groupId, { kind: 'read', device_id: 'd', up_to_version: 2 }))).toBe('conversation_not_found');
    expect(await codeOf(commands.react(carol, groupId, groupMessage, '👍', 'add'))).toBe('conversation_not_found');
    expect(await codeOf(commands.addMembers(carol, groupId, [erin]))).toBe('conversation_not_found');
    expect(await codeOf(commands.removeMember(carol, groupId, bob))).toBe('conversation_not_found');
    expect(await codeOf(commands.access(carol, unknown))).toBe('conversation_not_found');
    expect(readsOf(groupId)).toBe(0);
    expect(readsOf(unknown)).toBe(0);
    expect(await commands.screen(carol, [groupId, unknown])).toEqual(new Map([[groupId, 'stranger'], [unknown, 'unknown']]));
  });

  it('reads the stream for members and former members, whose answer only the stream has', async () => {
    const { commands, readsOf } = freshProcess();
    expect((await commands.access(bob, groupId)).kind).toBe('group');
    expect(readsOf(groupId)).toBeGreaterThan(0);
    const again = freshProcess();
    expect(await codeOf(again.commands.access(dave, groupId))).toBe('conversation_not_found'); // removed: the domain says so
    expect(again.readsOf(groupId)).toBeGreaterThan(0);
    expect(await commands.screen(dave, [groupId])).toEqual(new Map([[groupId, 'maybe']]));
  });

  it('while the read model lags, reads only what it has not applied, and lets in a member it does not know yet', async () => {
    await stack.projector.stop();
    try {
      const added = await stack.commands.addMembers(alice, groupId, [erin]);
      await stack.commands.sendMessage(erin, groupId, text('new here'));
      const { conversation } = await stack.commands.openDirect(alice, carol); // not projected at all
      expect(added.position).not.toBeNull();

      // The read model stopped at the removal (version 42): a stranger costs a read of what came after it.
      const stranger = freshProcess();
      expect(await codeOf(stranger.commands.access(carol, groupId))).toBe('conversation_not_found');
      expect(stranger.fromsOf(groupId)).toEqual([43]);

      const { commands, readsOf } = freshProcess();
      expect((await commands.access(erin, groupId)).kind).toBe('group'); // the unapplied MembersAdded names her
      expect(await commands.screen(carol, [groupId])).toEqual(new Map([[groupId, 'stranger']]));
      expect(await commands.screen(bob, [conversation.conversation_id])).toEqual(new Map([[conversation.conversation_id, 'stranger']]));
      expect(await commands.screen(carol, [conversation.conversation_id])).toEqual(new Map([[conversation.conversation_id, 'maybe']]));
      expect(readsOf(groupId)).toBeGreaterThan(0);
    } finally {
      await stack.projector.start();
    }
  });
});
