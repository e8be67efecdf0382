import { conflict, forbidden, illegalState, notFound, validation } from '../errors.js';
import { isReactionEmoji, MAX_REACTIONS_PER_USER_AND_MESSAGE } from '../fields.js';
import type { ConversationCommand, CommandOf } from './commands.js';
import { MAX_GROUP_MEMBERS, type ConversationEvent } from './events.js';
import {
  clientMessageVersion,
  deviceWatermarks,
  evolve,
  initialState,
  reactionsOf,
  type ActiveConversation,
  type ConversationState,
} from './state.js';

/**
 * The conversation decider: `decide(command, state) -> events`. Pure. An empty result means the
 * command was already carried out (a retried send, a watermark that would not move forward, a
 * reaction already there): callers read the outcome from the state.
 */
export function decide(command: ConversationCommand, state: ConversationState): ConversationEvent[] {
  switch (command.type) {
    case 'CreateDirectConversation':
      return createDirect(command, state);
    case 'CreateGroup':
      return createGroup(command, state);
    case 'AddMembers':
      return addMembers(command, requireActive(state));
    case 'RemoveMember':
      return removeMember(command, requireActive(state));
    case 'SendMessage':
      return sendMessage(command, requireActive(state));
    case 'AddReaction':
    case 'RemoveReaction':
      return react(command, requireActive(state));
    case 'MarkDelivered':
    case 'MarkRead':
      return markWatermark(command, requireActive(state));
    default: {
      const unreachable: never = command;
      throw validation('unknown_command', `unknown command ${(unreachable as { type: string }).type}`);
    }
  }
}

export const decider = { decide, evolve, initialState };

function requireActive(state: ConversationState): ActiveConversation {
  if (state.status !== 'active') throw notFound('conversation_not_found', 'conversation not found');
  return state;
}

/**
 * A conversation the user is not a member of does not exist for him: the answer is the one an
 * unknown id gets, word for word. A direct conversation's id is derived from its two user ids
 * (commands/ids.ts), so anything else would tell whoever knows two users' ids whether they talk.
 */
function requireMember(state: ActiveConversation, userId: string): void {
  if (!state.members.has(userId)) throw notFound('conversation_not_found', 'conversation not found');
}

function createDirect(command: CommandOf<'CreateDirectConversation'>, state: ConversationState): ConversationEvent[] {
  const { actor, participant_id, conversation_id } = command.data;
  if (actor === participant_id) throw validation('invalid_participant', 'participant_id: cannot open a conversation with yourself', { field: 'participant_id' });
  if (state.status === 'active') {
    // The stream id of a direct conversation is derived from the pair: opening it again is a no-op.
    if (state.kind === 'direct' && state.members.has(actor) && state.members.has(participant_id)) return [];
    throw conflict('conversation_exists', 'a different conversation already has this id');
  }
  return [
    {
      type: 'ConversationCreated',
      data: {
        conversation_id,
        kind: 'direct',
        created_by: actor,
        members: [actor, participant_id],
        name: null,
        description: null,
        created_at: command.metadata.now,
      },
    },
  ];
}

function createGroup(command: CommandOf<'CreateGroup'>, state: ConversationState): ConversationEvent[] {
  const { actor, name, description, member_ids, conversation_id } = command.data;
  if (state.status === 'active') throw conflict('conversation_exists', 'a conversation with this id already exists');
  const members = [...new Set([actor, ...member_ids])];
  if (members.length > MAX_GROUP_MEMBERS) {
    throw validation('group_full', `member_ids: a group holds at most ${MAX_GROUP_MEMBERS} members, creator included`, { field: 'member_ids' });
  }
  return [
    {
      type: 'ConversationCreated',
      data: { conversation_id, kind: 'group', created_by: actor, members, name, description, created_at: command.metadata.now },
    },
  ];
}

/** Membership first: a stranger learns nothing about the conversation (not even its kind). */
function requireGroupAdmin(state: ActiveConversation, actor: string): void {
  requireMember(state, actor);
  if (state.kind !== 'group') throw illegalState('not_a_group', 'members can only be changed in a group');
  if (!state.members.get(actor)?.admin) throw forbidden('not_an_admin', 'only a group admin can do this');
}

function addMembers(command: CommandOf<'AddMembers'>, state: ActiveConversation): ConversationEvent[] {
  const { actor } = command.data;
  requireGroupAdmin(state, actor);
  const newcomers = [...new Set(command.data.user_ids)].filter((id) => !state.members.has(id));
  if (newcomers.length === 0) return [];
  if (state.members.size + newcomers.length > MAX_GROUP_MEMBERS) {
    throw validation(
      'group_full',
      `user_ids: the group has ${state.members.size} members; adding ${newcomers.length} would pass the limit of ${MAX_GROUP_MEMBERS}`,
      { field: 'user_ids' },
    );
  }
  return [{ type: 'MembersAdded', data: { user_ids: newcomers, added_by: actor, added_at: command.metadata.now } }];
}

function removeMember(command: CommandOf<'RemoveMember'>, state: ActiveConversation): ConversationEvent[] {
  const { actor, user_id } = command.data;
  if (actor === user_id) {
    requireMember(state, actor); // leaving
    if (state.kind !== 'group') throw illegalState('not_a_group', 'members can only be changed in a group');
  } else {
    requireGroupAdmin(state, actor);
    if (!state.members.has(user_id)) throw notFound('member_not_found', 'that user is not a member of this group');
  }
  return [{ type: 'MemberRemoved', data: { user_id, removed_by: actor, removed_at: command.metadata.now } }];
}

function sendMessage(command: CommandOf<'SendMessage'>, state: ActiveConversation): ConversationEvent[] {
  const d = command.data;
  requireMember(state, d.actor);
  if (d.client_message_id !== null && clientMessageVersion(state, d.actor, d.client_message_id) !== undefined) return [];
  if (d.content_type === 'text') {
    if (d.content.trim().length === 0) throw validation('empty_content', 'content: a text message cannot be empty', { field: 'content' });
    if (d.media !== null) throw validation('unexpected_media', 'media: a text message carries no media', { field: 'media' });
  } else if (d.media === null) {
    throw validation('media_required', `media: a ${d.content_type} message needs a media reference`, { field: 'media' });
  }
  return [
    {
      type: 'MessageSent',
      data: {
        message_id: d.message_id,
        sender_id: d.actor,
        content: d.content,
        content_type: d.content_type,
        media: d.media,
        client_message_id: d.client_message_id,
        created_at: command.metadata.now,
      },
    },
  ];
}

function react(command: CommandOf<'AddReaction' | 'RemoveReaction'>, state: ActiveConversation): ConversationEvent[] {
  const d = command.data;
  requireMember(state, d.actor);
  // stored_message_id is what the store holds at message_version (the caller read it): events never
  // change, so it stays true; a version past this state's is not (yet) part of the conversation.
  if (d.message_version > state.version || d.stored_message_id !== d.message_id) {
    throw notFound('message_not_found', 'message not found in this conversation');
  }
  const held = reactionsOf(state, d.message_id, d.actor);
  const present = held.includes(d.emoji);
  const data = { message_id: d.message_id, message_version: d.message_version, user_id: d.actor, emoji: d.emoji, at: command.metadata.now };
  if (command.type === 'AddReaction') {
    // Only emoji, and a bounded number of them per user and message. (Reactions added before these
    // rules stay, and can be removed.)
    if (!isReactionEmoji(d.emoji)) throw validation('invalid_emoji', 'emoji: expected one emoji (a fully-qualified RGI emoji such as 👍 or ❤️)', { field: 'emoji' });
    if (present) return [];
    if (held.length >= MAX_REACTIONS_PER_USER_AND_MESSAGE) {
      throw validation(
        'too_many_reactions',
        `emoji: you already have ${held.length} reactions on this message, the most one person may have (${MAX_REACTIONS_PER_USER_AND_MESSAGE}); remove one first`,
        { field: 'emoji' },
      );
    }
    return [{ type: 'ReactionAdded', data }];
  }
  if (!present) throw notFound('reaction_not_found', 'you have not reacted with this emoji');
  return [{ type: 'ReactionRemoved', data }];
}

function markWatermark(command: CommandOf<'MarkDelivered' | 'MarkRead'>, state: ActiveConversation): ConversationEvent[] {
  const d = command.data;
  requireMember(state, d.actor);
  if (d.up_to_version > state.version) {
    throw validation('version_ahead', `up_to_version: ${d.up_to_version} is past the conversation's version ${state.version}`, {
      field: 'up_to_version',
    });
  }
  const current = deviceWatermarks(state, d.actor, d.device_id);
  const isRead = command.type === 'MarkRead';
  // Watermarks only move forward: an older or equal one is already covered.
  if ((isRead ? current.read : current.delivered) >= d.up_to_version) return [];
  const data = { user_id: d.actor, device_id: d.device_id, up_to_version: d.up_to_version, at: command.metadata.now };
  return [isRead ? { type: 'Read', data } : { type: 'Delivered', data }];
}
