import type { ConversationEvent } from './events.js';

export type Member = {
  /** Version of the event that made this user a member (for the latest membership). */
  joinedAt: number;
  admin: boolean;
};

export type Watermarks = { delivered: number; read: number };

/**
 * What the decider needs to know about one conversation: members, reactions, watermarks, and the
 * one per-message fact a decision needs (the client message ids of idempotent sends). No index of
 * messages: a command about an earlier message (a reaction) carries what the store holds at that
 * message's version, read by its caller (commands.ts), because a state that grew with every
 * message of a conversation's history is what a command side caching thousands of conversations
 * cannot afford (351 B per message with such an index; `npm run bench:state`, ARCHITECTURE.md).
 */
export type ConversationState =
  | { status: 'absent'; version: number }
  | {
      status: 'active';
      version: number;
      conversationId: string;
      kind: 'direct' | 'group';
      createdBy: string;
      createdAt: string;
      name: string | null;
      description: string | null;
      members: Map<string, Member>;
      /** sender_id -> client_message_id -> the message's sequence number (stream version). */
      clientMessages: Map<string, Map<string, number>>;
      /**
       * `${message_id}\u0000${user_id}` -> that user's emojis on that message, joined by U+0000
       * (no stored value holds a NUL: the store refuses them). One string per user and message,
       * usually the event's own emoji string: no more memory than a Set entry per reaction, and
       * the per-user count (the cap) without scanning the conversation's reactions.
       */
      reactions: Map<string, string>;
      /** user_id -> highest watermarks over all of the user's devices. */
      userWatermarks: Map<string, Watermarks>;
      /** `${user_id}\u0000${device_id}` -> the device's watermarks. */
      deviceWatermarks: Map<string, Watermarks>;
    };

export type ActiveConversation = Extract<ConversationState, { status: 'active' }>;

export const initialState = (): ConversationState => ({ status: 'absent', version: 0 });

const reactionKey = (messageId: string, userId: string) => `${messageId}\u0000${userId}`;
const deviceKey = (userId: string, deviceId: string) => `${userId}\u0000${deviceId}`;

/**
 * Folds one event into the state. `evolve` mutates and returns the state it is given (states are
 * private to one loader and can be large: copying them per event would make loading quadratic).
 * The version passed is the event's stream version.
 */
export function evolve(state: ConversationState, event: ConversationEvent, version = state.version + 1): ConversationState {
  if (event.type === 'ConversationCreated') {
    const d = event.data;
    const members = new Map<string, Member>();
    for (const id of d.members) members.set(id, { joinedAt: version, admin: d.kind === 'group' && id === d.created_by });
    return {
      status: 'active',
      version,
      conversationId: d.conversation_id,
      kind: d.kind,
      createdBy: d.created_by,
      createdAt: d.created_at,
      name: d.name,
      description: d.description,
      members,
      clientMessages: new Map(),
      reactions: new Map(),
      userWatermarks: new Map(),
      deviceWatermarks: new Map(),
    };
  }
  if (state.status !== 'active') return { ...state, version };
  state.version = version;
  switch (event.type) {
    case 'MembersAdded':
      for (const id of event.data.user_ids) {
        if (!state.members.has(id)) state.members.set(id, { joinedAt: version, admin: false });
      }
      return state;
    case 'MemberRemoved': {
      const removed = state.members.get(event.data.user_id);
      state.members.delete(event.data.user_id);
      // A group never stays without an admin: the longest-standing member takes over.
      if (removed?.admin && state.members.size > 0 && ![...state.members.values()].some((m) => m.admin)) {
        let eldest: Member | undefined;
        for (const m of state.members.values()) if (!eldest || m.joinedAt < eldest.joinedAt) eldest = m;
        if (eldest) eldest.admin = true;
      }
      return state;
    }
    case 'MessageSent': {
      const d = event.data;
      if (d.client_message_id !== null) {
        let ids = state.clientMessages.get(d.sender_id);
        if (ids === undefined) state.clientMessages.set(d.sender_id, (ids = new Map()));
        ids.set(d.client_message_id, version);
      }
      return state;
    }
    case 'ReactionAdded': {
      const key = reactionKey(event.data.message_id, event.data.user_id);
      const held = state.reactions.get(key);
      if (held === undefined) state.reactions.set(key, event.data.emoji);
      else if (!held.split('\u0000').includes(event.data.emoji)) state.reactions.set(key, `${held}\u0000${event.data.emoji}`);
      return state;
    }
    case 'ReactionRemoved': {
      const key = reactionKey(event.data.message_id, event.data.user_id);
      const rest = (state.reactions.get(key)?.split('\u0000') ?? []).filter((emoji) => emoji !== event.data.emoji);
      if (rest.length === 0) state.reactions.delete(key);
      else state.reactions.set(key, rest.join('\u0000'));
      return state;
    }
    case 'Delivered':
    case 'Read': {
      const d = event.data;
      const isRead = event.type === 'Read';
      for (const [map, key] of [
        [state.userWatermarks, d.user_id],
        [state.deviceWatermarks, deviceKey(d.user_id, d.device_id)],
      ] as const) {
        const w = map.get(key) ?? { delivered: 0, read: 0 };
        // Reading a message implies having received it.
        w.delivered = Math.max(w.delivered, d.up_to_version);
        if (isRead) w.read = Math.max(w.read, d.up_to_version);
        map.set(key, w);
      }
      return state;
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

/** The emojis `userId` has on message `messageId` (in the order they were added). */
export function reactionsOf(state: ActiveConversation, messageId: string, userId: string): string[] {
  return state.reactions.get(reactionKey(messageId, userId))?.split('\u0000') ?? [];
}

/** Every reaction of the conversation (for tools: `npm run replay -- --at-version`). */
export function* allReactions(state: ActiveConversation): Generator<{ message_id: string; user_id: string; emoji: string }> {
  for (const [key, emojis] of state.reactions) {
    const [message_id = '', user_id = ''] = key.split('\u0000');
    for (const emoji of emojis.split('\u0000')) yield { message_id, user_id, emoji };
  }
}

/** The sequence number of the message `senderId` sent with `clientMessageId`, if any. */
export function clientMessageVersion(state: ActiveConversation, senderId: string, clientMessageId: string): number | undefined {
  return state.clientMessages.get(senderId)?.get(clientMessageId);
}

export function deviceWatermarks(state: ActiveConversation, userId: string, deviceId: string): Watermarks {
  return state.deviceWatermarks.get(deviceKey(userId, deviceId)) ?? { delivered: 0, read: 0 };
}

/**
 * What `evolve(state, event, version)` is about to change, so that it can be put back: call it
 * BEFORE evolve with the same arguments, then call the function it returns to restore `state` as
 * it was. Undo in reverse order of the folds. It saves only the entries the event touches (a state
 * holds a client message id per message of a long conversation), which is what lets a command
 * side fold decided events before their append and take them back when the append is refused,
 * instead of reloading the whole stream.
 */
export function undoOf(state: ConversationState, event: ConversationEvent): () => void {
  // ConversationCreated and folds into a non-active state return a new object: `state` is untouched.
  if (event.type === 'ConversationCreated' || state.status !== 'active') return () => {};
  const version = state.version;
  const restore = (map: Map<string, unknown>, key: string) => {
    const had = map.has(key);
    const value = map.get(key);
    return () => (had ? map.set(key, value) : map.delete(key));
  };
  let undo: (() => unknown)[];
  switch (event.type) {
    case 'MembersAdded':
    case 'MemberRemoved': {
      // A removal can hand the admin role to someone else: keep every member's entry (256 at most).
      const members = [...state.members].map(([id, m]) => [id, { ...m }] as const);
      undo = [
        () => {
          state.members.clear();
          for (const [id, m] of members) state.members.set(id, m);
        },
      ];
      break;
    }
    case 'MessageSent': {
      const d = event.data;
      const ids = state.clientMessages.get(d.sender_id);
      if (d.client_message_id === null) undo = [];
      else if (ids === undefined) undo = [() => state.clientMessages.delete(d.sender_id)];
      else undo = [restore(ids, d.client_message_id)];
      break;
    }
    case 'ReactionAdded':
    case 'ReactionRemoved':
      undo = [restore(state.reactions, reactionKey(event.data.message_id, event.data.user_id))];
      break;
    case 'Delivered':
    case 'Read': {
      const d = event.data;
      undo = [state.userWatermarks, state.deviceWatermarks].map((map, i) => {
        const key = i === 0 ? d.user_id : deviceKey(d.user_id, d.device_id);
        const before = map.get(key);
        // evolve changes the watermark object in place: keep its numbers, not the reference alone.
        const saved = before === undefined ? undefined : { ...before };
        return () => (before === undefined ? map.delete(key) : map.set(key, Object.assign(before, saved)));
      });
      break;
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
  return () => {
    for (const u of undo) u();
    state.version = version;
  };
}
