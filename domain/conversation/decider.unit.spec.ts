import { describe, it } from 'vitest';
import { deciderSpecification } from '../testing/decider-spec.js';
import type { ConversationCommand } from './commands.js';
import { decider } from './decide.js';
import type { ConversationEvent } from './events.js';
import { MAX_REACTIONS_PER_USER_AND_MESSAGE } from '../fields.js';

const spec = deciderSpecification(decider);
const now = '2026-11-27T10:00:00.000Z';
const metadata = { now };

const direct = (members: [string, string] = ['alice', 'bob']): ConversationEvent => ({
  type: 'ConversationCreated',
  data: { conversation_id: 'c1', kind: 'direct', created_by: members[0], members, name: null, description: null, created_at: now },
});
const group = (members: string[], createdBy = members[0]!): ConversationEvent => ({
  type: 'ConversationCreated',
  data: { conversation_id: 'g1', kind: 'group', created_by: createdBy, members, name: 'team', description: null, created_at: now },
});
const sent = (sender: string, messageId: string, clientMessageId: string | null = null): ConversationEvent => ({
  type: 'MessageSent',
  data: { message_id: messageId, sender_id: sender, content: 'hi', content_type: 'text', media: null, client_message_id: clientMessageId, created_at: now },
});
const send = (actor: string, messageId: string, clientMessageId: string | null = null, content = 'hi'): ConversationCommand => ({
  type: 'SendMessage',
  data: { actor, message_id: messageId, content, content_type: 'text', media: null, client_message_id: clientMessageId },
  metadata,
});
const users = (n: number) => Array.from({ length: n }, (_, i) => `u${i}`);

describe('conversation decider', () => {
  describe('direct conversations', () => {
    it('creates a direct conversation of the two users', () =>
      spec.given([]).when({ type: 'CreateDirectConversation', data: { conversation_id: 'c1', actor: 'alice', participant_id: 'bob' }, metadata }).then([direct()]));

    it('opening the same pair again changes nothing', () =>
      spec
        .given([direct()])
        .when({ type: 'CreateDirectConversation', data: { conversation_id: 'c1', actor: 'bob', participant_id: 'alice' }, metadata })
        .thenNothingHappens());

    it('refuses a conversation with oneself', () =>
      spec
        .given([])
        .when({ type: 'CreateDirectConversation', data: { conversation_id: 'c1', actor: 'alice', participant_id: 'alice' }, metadata })
        .thenThrows('invalid_participant'));

    it('has no members to add', () =>
      spec.given([direct()]).when({ type: 'AddMembers', data: { actor: 'alice', user_ids: ['carol'] }, metadata }).thenThrows('not_a_group'));

    it('tells a stranger who changes its members only that they are not a member, not what kind of conversation it is', () => {
      spec.given([direct()]).when({ type: 'AddMembers', data: { actor: 'mallory', user_ids: ['carol'] }, metadata }).thenThrows('conversation_not_found');
      spec.given([direct()]).when({ type: 'RemoveMember', data: { actor: 'mallory', user_id: 'bob' }, metadata }).thenThrows('conversation_not_found');
      spec.given([direct()]).when({ type: 'RemoveMember', data: { actor: 'mallory', user_id: 'mallory' }, metadata }).thenThrows('conversation_not_found');
    });
  });

  describe('groups', () => {
    it('makes the creator a member, once, whatever the member list says', () =>
      spec
        .given([])
        .when({ type: 'CreateGroup', data: { conversation_id: 'g1', actor: 'alice', name: 'team', description: null, member_ids: ['bob', 'alice', 'bob'] }, metadata })
        .then([group(['alice', 'bob'])]));

    it('holds 256 members, creator included', () =>
      spec
        .given([])
        .when({ type: 'CreateGroup', data: { conversation_id: 'g1', actor: 'u0', name: 'team', description: null, member_ids: users(256) }, metadata })
        .then([group(users(256))]));

    it('refuses a 257th member at creation', () =>
      spec
        .given([])
        .when({ type: 'CreateGroup', data: { conversation_id: 'g1', actor: 'boss', name: 'team', description: null, member_ids: users(256) }, metadata })
        .thenThrows('group_full'));

    it('refuses to add past 256', () =>
      spec.given([group(users(255))]).when({ type: 'AddMembers', data: { actor: 'u0', user_ids: ['x', 'y'] }, metadata }).thenThrows('group_full'));

    it('lets the admin add members, skipping those already in', () =>
      spec
        .given([group(['alice', 'bob'])])
        .when({ type: 'AddMembers', data: { actor: 'alice', user_ids: ['bob', 'carol'] }, metadata })
        .then([{ type: 'MembersAdded', data: { user_ids: ['carol'], added_by: 'alice', added_at: now } }]));

    it('does not let a plain member add others', () =>
      spec.given([group(['alice', 'bob'])]).when({ type: 'AddMembers', data: { actor: 'bob', user_ids: ['carol'] }, metadata }).thenThrows('not_an_admin'));

    it('does not let a plain member remove others', () =>
      spec.given([group(['alice', 'bob', 'carol'])]).when({ type: 'RemoveMember', data: { actor: 'bob', user_id: 'carol' }, metadata }).thenThrows('not_an_admin'));

    it('lets any member leave', () =>
      spec
        .given([group(['alice', 'bob'])])
        .when({ type: 'RemoveMember', data: { actor: 'bob', user_id: 'bob' }, metadata })
        .then([{ type: 'MemberRemoved', data: { user_id: 'bob', removed_by: 'bob', removed_at: now } }]));

    it('a removed member can no longer send', () =>
      spec
        .given([group(['alice', 'bob']), { type: 'MemberRemoved', data: { user_id: 'bob', removed_by: 'alice', removed_at: now } }])
        .when(send('bob', 'm1'))
        .thenThrows('conversation_not_found'));

    it('hands the admin role to the longest-standing member when the last admin leaves', () =>
      spec
        .given([
          group(['alice', 'bob', 'carol']),
          { type: 'MemberRemoved', data: { user_id: 'alice', removed_by: 'alice', removed_at: now } },
        ])
        .when({ type: 'AddMembers', data: { actor: 'bob', user_ids: ['dave'] }, metadata })
        .then([{ type: 'MembersAdded', data: { user_ids: ['dave'], added_by: 'bob', added_at: now } }]));
  });

  describe('messages', () => {
    it('lets a member send', () => spec.given([direct()]).when(send('alice', 'm1', 'c-1')).then([sent('alice', 'm1', 'c-1')]));

    it('refuses a non-member', () => spec.given([direct()]).when(send('mallory', 'm1')).thenThrows('conversation_not_found'));

    it('refuses to send to a conversation that does not exist', () => spec.given([]).when(send('alice', 'm1')).thenThrows('conversation_not_found'));

    it('a retried send with the same client_message_id appends nothing', () =>
      spec.given([direct(), sent('alice', 'm1', 'c-1')]).when(send('alice', 'm2', 'c-1')).thenNothingHappens());

    it('the same client_message_id from another sender is another message', () =>
      spec.given([direct(), sent('alice', 'm1', 'c-1')]).when(send('bob', 'm2', 'c-1')).then([sent('bob', 'm2', 'c-1')]));

    it('refuses an empty text', () => spec.given([direct()]).when(send('alice', 'm1', null, '  ')).thenThrows('empty_content'));

    it('refuses a photo without media', () =>
      spec
        .given([direct()])
        .when({ type: 'SendMessage', data: { actor: 'alice', message_id: 'm1', content: '', content_type: 'image', media: null, client_message_id: null }, metadata })
        .thenThrows('media_required'));
  });

  describe('reactions', () => {
    /** As the command side makes it: stored is what the store holds at `version` (m1 sits at 2 in these histories). */
    const react = (type: 'AddReaction' | 'RemoveReaction', actor: string, version = 2, stored: string | null = version === 2 ? 'm1' : null): ConversationCommand => ({
      type,
      data: { actor, message_id: 'm1', message_version: version, emoji: '👍', stored_message_id: stored },
      metadata,
    });
    const added: ConversationEvent = { type: 'ReactionAdded', data: { message_id: 'm1', message_version: 2, user_id: 'bob', emoji: '👍', at: now } };

    it('adds a reaction to a message of the conversation', () => spec.given([direct(), sent('alice', 'm1')]).when(react('AddReaction', 'bob')).then([added]));
    it('adding it twice changes nothing', () => spec.given([direct(), sent('alice', 'm1'), added]).when(react('AddReaction', 'bob')).thenNothingHappens());
    it('removes it', () =>
      spec.given([direct(), sent('alice', 'm1'), added]).when(react('RemoveReaction', 'bob')).then([{ type: 'ReactionRemoved', data: added.data }] as ConversationEvent[]));
    it('refuses to remove a reaction that is not there', () =>
      spec.given([direct(), sent('alice', 'm1')]).when(react('RemoveReaction', 'bob')).thenThrows('reaction_not_found'));
    it('refuses a message of another version', () =>
      spec.given([direct(), sent('alice', 'm1')]).when(react('AddReaction', 'bob', 1)).thenThrows('message_not_found'));
    it('refuses a non-member', () => spec.given([direct(), sent('alice', 'm1')]).when(react('AddReaction', 'mallory')).thenThrows('conversation_not_found'));
    it('refuses a message the store holds under another id at that version', () =>
      spec.given([direct(), sent('alice', 'm1')]).when(react('AddReaction', 'bob', 2, 'm9')).thenThrows('message_not_found'));
    it('refuses a version this state has not reached, whatever the caller read', () =>
      spec.given([direct(), sent('alice', 'm1')]).when(react('AddReaction', 'bob', 3, 'm1')).thenThrows('message_not_found'));

    const reactWith = (type: 'AddReaction' | 'RemoveReaction', actor: string, emoji: string): ConversationCommand => ({
      type,
      data: { actor, message_id: 'm1', message_version: 2, emoji, stored_message_id: 'm1' },
      metadata,
    });
    const addedBy = (user: string, emoji: string): ConversationEvent => ({ type: 'ReactionAdded', data: { message_id: 'm1', message_version: 2, user_id: user, emoji, at: now } });
    const removedBy = (user: string, emoji: string): ConversationEvent => ({ type: 'ReactionRemoved', data: { message_id: 'm1', message_version: 2, user_id: user, emoji, at: now } });
    /** Emoji enough to reach the cap: the 20 RGI emoji from U+1F600 on. */
    const faces = Array.from({ length: MAX_REACTIONS_PER_USER_AND_MESSAGE + 1 }, (_, i) => String.fromCodePoint(0x1f600 + i));
    const atTheCap = [direct(), sent('alice', 'm1'), ...faces.slice(0, MAX_REACTIONS_PER_USER_AND_MESSAGE).map((e) => addedBy('bob', e))];

    it.each(['❤️', '👍🏽', '🇫🇷', '#️⃣', '👨‍👩‍👧', '🏳️‍🌈'])('takes one emoji (skin tones, flags, keycaps and ZWJ sequences too): %s', (emoji) =>
      spec.given([direct(), sent('alice', 'm1')]).when(reactWith('AddReaction', 'bob', emoji)).then([addedBy('bob', emoji)]));
    it.each(['<svg/onload=alert(1)>', 'a', ':)', '👍👍', '❤', '\u0000', '\ud83d'])('refuses what is not one emoji (markup, letters, two emoji, an unqualified symbol): %j', (emoji) =>
      spec.given([direct(), sent('alice', 'm1')]).when(reactWith('AddReaction', 'bob', emoji)).thenThrows('invalid_emoji'));
    it(`caps one user's distinct reactions on one message at ${MAX_REACTIONS_PER_USER_AND_MESSAGE}`, () =>
      spec.given(atTheCap).when(reactWith('AddReaction', 'bob', faces[MAX_REACTIONS_PER_USER_AND_MESSAGE]!)).thenThrows('too_many_reactions'));
    it('at the cap, adding one the user already has still changes nothing', () =>
      spec.given(atTheCap).when(reactWith('AddReaction', 'bob', faces[0]!)).thenNothingHappens());
    it("the cap is per user: another member still reacts to the same message", () =>
      spec.given(atTheCap).when(reactWith('AddReaction', 'alice', faces[0]!)).then([addedBy('alice', faces[0]!)]));
    it('a removal makes room again', () =>
      spec
        .given([...atTheCap, removedBy('bob', faces[3]!)])
        .when(reactWith('AddReaction', 'bob', faces[MAX_REACTIONS_PER_USER_AND_MESSAGE]!))
        .then([addedBy('bob', faces[MAX_REACTIONS_PER_USER_AND_MESSAGE]!)]));
    it('a reaction stored before the emoji rule can still be removed', () =>
      spec
        .given([direct(), sent('alice', 'm1'), addedBy('bob', '<b>hi</b>'), addedBy('bob', '👍')])
        .when(reactWith('RemoveReaction', 'bob', '<b>hi</b>'))
        .then([removedBy('bob', '<b>hi</b>')]));
  });

  describe('watermarks', () => {
    const mark = (type: 'MarkDelivered' | 'MarkRead', upTo: number, device = 'phone'): ConversationCommand => ({
      type,
      data: { actor: 'bob', device_id: device, up_to_version: upTo },
      metadata,
    });
    const read = (upTo: number, device = 'phone'): ConversationEvent => ({ type: 'Read', data: { user_id: 'bob', device_id: device, up_to_version: upTo, at: now } });
    const history = [direct(), sent('alice', 'm1'), sent('alice', 'm2'), sent('alice', 'm3')];

    it('records a read watermark', () => spec.given(history).when(mark('MarkRead', 3)).then([read(3)]));
    it('only moves forward', () => spec.given([...history, read(3)]).when(mark('MarkRead', 2)).thenNothingHappens());
    it('a read covers delivery', () => spec.given([...history, read(3)]).when(mark('MarkDelivered', 3)).thenNothingHappens());
    it('each device has its own watermark', () => spec.given([...history, read(3)]).when(mark('MarkRead', 2, 'laptop')).then([read(2, 'laptop')]));
    it('refuses a version the conversation has not reached', () => spec.given(history).when(mark('MarkRead', 5)).thenThrows('version_ahead'));
    it('refuses a non-member', () =>
      spec
        .given(history)
        .when({ type: 'MarkRead', data: { actor: 'mallory', device_id: 'x', up_to_version: 2 }, metadata })
        .thenThrows('conversation_not_found'));
  });
});
