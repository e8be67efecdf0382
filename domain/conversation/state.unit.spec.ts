import { describe, expect, it } from 'vitest';
import type { ConversationEvent } from './events.js';
import { random as seeded } from '../testing/random.js';
import { evolve, initialState, undoOf, type ConversationState } from './state.js';

const now = '2026-11-27T10:00:00.000Z';

const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];

/** A random event of every kind evolve folds, often touching entries that already exist. */
function randomEvent(random: () => number, n: number): ConversationEvent {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const user = pick(users);
  const messageId = `m${Math.floor(random() * (n + 1))}`;
  switch (Math.floor(random() * 7)) {
    case 0:
      return { type: 'MembersAdded', data: { user_ids: [pick(users), pick(users)], added_by: 'u0', added_at: now } };
    case 1:
      return { type: 'MemberRemoved', data: { user_id: random() < 0.5 ? 'u0' : user, removed_by: 'u0', removed_at: now } };
    case 2:
    case 3:
      return {
        type: 'MessageSent',
        data: { message_id: messageId, sender_id: user, content: 'hi', content_type: 'text', media: null, client_message_id: random() < 0.5 ? null : `c${Math.floor(random() * 5)}`, created_at: now },
      };
    case 4:
      return { type: random() < 0.6 ? 'ReactionAdded' : 'ReactionRemoved', data: { message_id: messageId, message_version: 1, user_id: user, emoji: pick(['👍', '❤️']), at: now } };
    default:
      return { type: random() < 0.5 ? 'Delivered' : 'Read', data: { user_id: user, device_id: pick(['d1', 'd2']), up_to_version: 1 + Math.floor(random() * (n + 2)), at: now } };
  }
}

function groupOf(members: string[]): ConversationEvent {
  return { type: 'ConversationCreated', data: { conversation_id: 'g1', kind: 'group', created_by: members[0]!, members, name: 'team', description: null, created_at: now } };
}

describe('undoOf', () => {
  it('puts the state back exactly as it was after any run of folds, undone in reverse (500 random histories)', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const random = seeded(seed).next;
      let state: ConversationState = evolve(initialState(), groupOf(['u0', 'u1', 'u2']));
      const history = Math.floor(random() * 30);
      for (let i = 0; i < history; i++) state = evolve(state, randomEvent(random, i));
      const before = structuredClone(state);

      const undos: (() => void)[] = [];
      const speculative = 1 + Math.floor(random() * 8);
      for (let i = 0; i < speculative; i++) {
        const event = randomEvent(random, history + i);
        undos.push(undoOf(state, event));
        state = evolve(state, event);
      }
      for (const undo of undos.reverse()) undo();

      expect(state, `seed ${seed}`).toEqual(before);
    }
  });

  it('gives back the admin role a removal handed to the eldest member', () => {
    let state = evolve(initialState(), groupOf(['u0', 'u1', 'u2']));
    const before = structuredClone(state);
    const removal: ConversationEvent = { type: 'MemberRemoved', data: { user_id: 'u0', removed_by: 'u0', removed_at: now } };
    const undo = undoOf(state, removal);
    state = evolve(state, removal);
    expect(state.status === 'active' && state.members.get('u1')?.admin).toBe(true);

    undo();

    expect(state).toEqual(before);
    expect(state.status === 'active' && state.members.get('u1')?.admin).toBe(false);
  });

  it('leaves an absent state absent when a creation is taken back', () => {
    const state = initialState();
    const undo = undoOf(state, groupOf(['u0', 'u1']));
    const created = evolve(state, groupOf(['u0', 'u1']));
    undo();
    expect(created.status).toBe('active');
    expect(state).toEqual({ status: 'absent', version: 0 });
  });
});
