import { createConversationCommands } from '../../commands/conversations.js';
import type { EventStore } from '../../domain/ports/event-store.js';

/** Every id is a registered user (tests and benchmarks make up their users). */
const anyone = { existing: async (ids: string[]) => new Set(ids) };

export const userId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

/**
 * Writes conversations through the real command side: groups with messages, reactions added and
 * removed, delivered and read marks, a member removed and one added, so every event type occurs.
 * Returns the conversation ids. Conversations are written concurrently, each in order.
 */
export async function seedConversations(store: EventStore, options: { groups: number; messagesPerGroup: number; seed?: number }): Promise<string[]> {
  const commands = createConversationCommands({ store, users: anyone, clock: () => new Date() });
  const base = (options.seed ?? 0) * 1000;
  return Promise.all(
    Array.from({ length: options.groups }, async (_, g) => {
      const members = [0, 1, 2, 3].map((k) => userId(base + g * 4 + k));
      const [admin, b, c, d] = members as [string, string, string, string];
      const { conversation } = await commands.createGroup(admin, { name: `group ${g}`, description: g % 2 ? 'd' : null, member_ids: [b, c, d] });
      const id = conversation.conversation_id;
      let dIsMember = true;
      for (let i = 0; i < options.messagesPerGroup; i++) {
        const sender = members[i % 3]!;
        const sent = await commands.sendMessage(sender, id, { content: `message ${i} of ${g}, "quoted", comma\nline`, content_type: 'text', media: null, client_message_id: i % 4 === 0 ? `c-${i}` : null });
        const seq = sent.message.sequence_number;
        if (i % 5 === 1) await commands.react(c, id, sent.message, '👍', 'add');
        if (i % 10 === 6) await commands.react(c, id, sent.message, '👍', 'remove');
        if (i % 3 === 2 && dIsMember) await commands.markWatermark(d, id, { device_id: 'phone', up_to_version: seq, kind: 'delivered' });
        if (i % 7 === 3) await commands.markWatermark(b, id, { device_id: 'laptop', up_to_version: seq, kind: 'read' });
        if (i === Math.floor(options.messagesPerGroup / 2)) {
          await commands.removeMember(admin, id, d);
          dIsMember = false;
        }
        if (i === Math.floor((3 * options.messagesPerGroup) / 4)) {
          await commands.addMembers(admin, id, [d]);
          dIsMember = true;
        }
      }
      return id;
    }),
  );
}
