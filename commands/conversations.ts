import type { ContentType, MediaRef } from '../domain/conversation/events.js';
import { MessageSent } from '../domain/conversation/events.js';
import type { ActiveConversation, ConversationState } from '../domain/conversation/state.js';
import { clientMessageVersion } from '../domain/conversation/state.js';
import { notFound, validation } from '../domain/errors.js';
import { parseConversationEvent } from '../domain/conversation/upcast.js';
import type { EventStore } from '../domain/ports/event-store.js';
import { conversationStreamId, directConversationId, newId } from './ids.js';
import type { MembershipIndex, UserDirectory } from '../domain/ports/directory.js';
import { createStreamWorker, type CommandOutcome } from './stream-worker.js';

/**
 * The command side of conversations: what the REST API and the WebSocket gateway call. Each method
 * turns a request into one domain command, runs it through the stream worker, and returns a view
 * of the outcome. `now` comes from the caller's clock (the entry point), never from here.
 */

export type Participant = { user_id: string; role: 'admin' | 'member' };

export type ConversationView = {
  conversation_id: string;
  type: 'one_on_one' | 'group';
  name: string | null;
  description: string | null;
  created_by: string;
  created_at: string;
  participants: Participant[];
  version: number;
};

export type MessageView = {
  message_id: string;
  conversation_id: string;
  sender_id: string;
  content: string;
  content_type: ContentType;
  media: MediaRef | null;
  client_message_id: string | null;
  created_at: string;
  sequence_number: number;
};

export type Position = { shard: number; position: number };

export type Access = { kind: 'direct' | 'group'; version: number; isAdmin: boolean };

/**
 * What a user may be in a conversation, decided without reading its stream (`screen`):
 * `unknown`: no such conversation; `stranger`: it exists and the user has never been a member;
 * `maybe`: the user is, was, or may be a member (only the stream can tell: read it).
 */
export type Screening = 'unknown' | 'stranger' | 'maybe';

export type ConversationCommandsDeps = {
  store: EventStore;
  users: UserDirectory;
  clock: () => Date;
  cacheSize?: number;
  /**
   * Who belongs where, from a read model: with it, a request from someone who was never a member of
   * a conversation this process does not hold is refused without reading the stream. Without it
   * every check reads the stream.
   */
  memberships?: MembershipIndex;
};

/** Events the read model has not applied yet that are read to check a "never a member" (more: read the stream). */
const MAX_UNPROJECTED_TAIL = 1_000;
const MEMBERSHIP_EVENTS = ['ConversationCreated', 'MembersAdded'];

export interface ConversationCommands {
  /** Opens (or finds) the direct conversation with `participantId`; `created` is false when it existed. */
  openDirect(actor: string, participantId: string, requestId?: string): Promise<{
    conversation: ConversationView;
    created: boolean;
    position: Position | null;
  }>;
  createGroup(actor: string, input: {
    name: string;
    description: string | null;
    member_ids: string[];
  }, requestId?: string): Promise<{
    conversation: ConversationView;
    position: Position | null;
  }>;
  addMembers(actor: string, conversationId: string, userIds: string[], requestId?: string): Promise<{
    conversation: ConversationView;
    position: Position | null;
  }>;
  removeMember(actor: string, conversationId: string, userId: string, requestId?: string): Promise<{
    conversation: ConversationView;
    position: Position | null;
  }>;
  /**
   * Sends a message. With a client_message_id already used by this sender in this conversation,
   * nothing is appended and the original message comes back (`created: false`).
   */
  sendMessage(actor: string, conversationId: string, input: {
    content: string;
    content_type: ContentType;
    media: MediaRef | null;
    client_message_id: string | null;
  }, requestId?: string): Promise<{
    message: MessageView;
    created: boolean;
    position: Position | null;
  }>;
  react(actor: string, conversationId: string, message: {
    message_id: string;
    sequence_number: number;
  }, emoji: string, action: 'add' | 'remove', requestId?: string): Promise<{
    changed: boolean;
    position: Position | null;
  }>;
  /** Moves the caller's delivered or read watermark forward to `upToVersion` (never back). */
  markWatermark(actor: string, conversationId: string, input: {
    device_id: string;
    up_to_version: number;
    kind: 'delivered' | 'read';
  }, requestId?: string): Promise<{
    changed: boolean;
    watermarks: {
      delivered_up_to: number;
      read_up_to: number;
    };
    position: Position | null;
  }>;
  access(actor: string, conversationId: string): Promise<Access>;
  /**
   * Who `actor` may be in each conversation, without reading their streams (see Screening):
   * what a replay for someone who may be a stranger asks first.
   */
  screen(actor: string, conversationIds: readonly string[]): Promise<Map<string, Screening>>;
  /**
   * The members other than `actor`, after the same checks as `access` (404, 403): who a
   * signal of the actor in that conversation (typing) is for.
   */
  otherMembers(actor: string, conversationId: string): Promise<string[]>;
  /** The conversation as the command side sees it now (members, roles, version), for a member. */
  describe(actor: string, conversationId: string): Promise<ConversationView>;
}

function viewOf(state: ActiveConversation): ConversationView {
  return {
    conversation_id: state.conversationId,
    type: state.kind === 'direct' ? 'one_on_one' : 'group',
    name: state.name,
    description: state.description,
    created_by: state.createdBy,
    created_at: state.createdAt,
    participants: [...state.members].map(([user_id, m]) => ({ user_id, role: m.admin ? 'admin' : 'member' })),
    version: state.version,
  };
}

function active(state: ConversationState): ActiveConversation {
  if (state.status !== 'active') throw notFound('conversation_not_found', 'conversation not found');
  return state;
}

export function createConversationCommands(deps: ConversationCommandsDeps): ConversationCommands {
  const { store, users, clock } = deps;
  const worker = createStreamWorker({ store, cacheSize: deps.cacheSize });
  const now = () => clock().toISOString();
  const meta = (actor: string, requestId?: string) => (requestId ? { actor, request_id: requestId } : { actor });

  /**
   * Screens conversations for `actor` without reading their streams: the read model's record of
   * the actor, checked against each stream's current version (one index lookup). Where the read
   * model lags a stream, only the events it has not applied yet are read (membership events, at
   * most MAX_UNPROJECTED_TAIL; more: `maybe`).
   */
  async function screen(actor: string, conversationIds: readonly string[]): Promise<Map<string, Screening>> {
    const out = new Map<string, Screening>();
    if (deps.memberships === undefined) {
      for (const id of conversationIds) out.set(id, 'maybe');
      return out;
    }
    const recorded = await deps.memberships.memberships(actor, conversationIds);
    for (const id of conversationIds) {
      const seen = recorded.get(id);
      if (seen !== undefined && seen.membership !== 'never') out.set(id, 'maybe');
      else out.set(id, await unrecorded(actor, id, seen?.version ?? 0));
    }
    return out;
  }

  /** The read model, as of `projectedVersion`, has never seen `actor` in the conversation: is that still true? */
  async function unrecorded(actor: string, conversationId: string, projectedVersion: number): Promise<Screening> {
    const streamId = conversationStreamId(conversationId);
    const head = await store.streamVersion(streamId);
    if (head === 0) return 'unknown';
    if (head <= projectedVersion) return 'stranger';
    if (head - projectedVersion > MAX_UNPROJECTED_TAIL) return 'maybe';
    const tail = await store.readStream(streamId, { from: projectedVersion + 1, maxCount: head - projectedVersion, types: MEMBERSHIP_EVENTS });
    for (const stored of tail) {
      const event = parseConversationEvent(stored);
      if (event.type === 'ConversationCreated' && event.data.members.includes(actor)) return 'maybe';
      if (event.type === 'MembersAdded' && event.data.user_ids.includes(actor)) return 'maybe';
    }
    return 'stranger';
  }

  /**
   * Whether a request on the stream is screened (`gate`) before it is read: when this process does
   * not hold the stream's state. A held stream costs the request nothing more than this lookup
   * (commands on a held stream are the hot path: no promise, no tick).
   */
  const unheld = (streamId: string) => deps.memberships !== undefined && !worker.holds(streamId);

  /**
   * Refuses a stranger or an unknown conversation (the same 404) before the stream is read (for a
   * stream `unheld` says this process does not hold): the same answers the domain gives, without the read.
   */
  async function gate(actor: string, conversationId: string): Promise<void> {
    const verdict = (await screen(actor, [conversationId])).get(conversationId);
    if (verdict === 'unknown') throw notFound('conversation_not_found', 'conversation not found');
    // A stranger gets the unknown id's answer (the domain's requireMember says why).
    if (verdict === 'stranger') throw notFound('conversation_not_found', 'conversation not found');
  }

  async function requireUsers(ids: string[], field: string) {
    const unique = [...new Set(ids)];
    const found = await users.existing(unique);
    const missing = unique.filter((id) => !found.has(id));
    if (missing.length > 0) throw notFound('user_not_found', `${field}: no such user: ${missing.join(', ')}`);
  }

  /**
   * The caller's access to a conversation, from the authoritative (command-side) state:
   * 404 when it does not exist or the caller is not a member (the same answer).
   */
  async function access(actor: string, conversationId: string): Promise<Access> {
    const streamId = conversationStreamId(conversationId);
    if (unheld(streamId)) await gate(actor, conversationId);
    const access = admitted(
      await worker.read(streamId, (state) => {
        if (state.status !== 'active') return null;
        const member = state.members.get(actor);
        return { kind: state.kind, version: state.version, member: member ? { admin: member.admin } : null };
      }),
    );
    return { kind: access.kind, version: access.version, isAdmin: access.member.admin };
  }

  /**
   * The message_id of the MessageSent stored at `version` of the stream, or null (another kind of
   * event, or no event there): the fact a reaction is decided on (the state keeps no index of
   * messages). One primary-key read; an event never changes, so reading it before the command is
   * as good as reading it with it.
   */
  async function storedMessageId(streamId: string, version: number): Promise<string | null> {
    if (!Number.isSafeInteger(version) || version < 1) return null;
    const [stored] = await store.readStream(streamId, { from: version, maxCount: 1 });
    if (stored === undefined || stored.version !== version || stored.type !== 'MessageSent') return null;
    const parsed = MessageSent.shape.data.safeParse(stored.data);
    return parsed.success ? parsed.data.message_id : null;
  }

  /** 404 when a read found no active conversation (null), 403 when it found the caller no member. */
  function admitted<T extends { member: object | null }>(seen: T | null): T & { member: NonNullable<T['member']> } {
    if (!seen) throw notFound('conversation_not_found', 'conversation not found');
    if (!seen.member) throw notFound('conversation_not_found', 'conversation not found');
    return seen as T & { member: NonNullable<T['member']> };
  }

  return {
    /** Opens (or finds) the direct conversation with `participantId`; `created` is false when it existed. */
    async openDirect(actor: string, participantId: string, requestId?: string) {
      if (actor === participantId) {
        throw validation('invalid_participant', 'participant_id: cannot open a conversation with yourself', { field: 'participant_id' });
      }
      await requireUsers([participantId], 'participant_id');
      const conversationId = directConversationId(actor, participantId);
      const outcome = await worker.execute(
        conversationStreamId(conversationId),
        { type: 'CreateDirectConversation', data: { conversation_id: conversationId, actor, participant_id: participantId }, metadata: { now: now() } },
        (state) => viewOf(active(state)),
        meta(actor, requestId),
      );
      return { conversation: outcome.value, created: outcome.events.length > 0, position: outcome.position };
    },

    async createGroup(actor: string, input: { name: string; description: string | null; member_ids: string[] }, requestId?: string) {
      await requireUsers(input.member_ids, 'member_ids');
      const conversationId = newId();
      const outcome = await worker.execute(
        conversationStreamId(conversationId),
        { type: 'CreateGroup', data: { conversation_id: conversationId, actor, ...input }, metadata: { now: now() } },
        (state) => viewOf(active(state)),
        meta(actor, requestId),
      );
      return { conversation: outcome.value, position: outcome.position };
    },

    async addMembers(actor: string, conversationId: string, userIds: string[], requestId?: string) {
      const streamId = conversationStreamId(conversationId);
      if (unheld(streamId)) await gate(actor, conversationId);
      await requireUsers(userIds, 'user_ids');
      const outcome = await worker.execute(
        streamId,
        { type: 'AddMembers', data: { actor, user_ids: userIds }, metadata: { now: now() } },
        (state) => viewOf(active(state)),
        meta(actor, requestId),
      );
      return { conversation: outcome.value, position: outcome.position };
    },

    async removeMember(actor: string, conversationId: string, userId: string, requestId?: string) {
      const streamId = conversationStreamId(conversationId);
      if (unheld(streamId)) await gate(actor, conversationId);
      const outcome = await worker.execute(
        streamId,
        { type: 'RemoveMember', data: { actor, user_id: userId }, metadata: { now: now() } },
        (state) => viewOf(active(state)),
        meta(actor, requestId),
      );
      return { conversation: outcome.value, position: outcome.position };
    },

    /**
     * Sends a message. With a client_message_id already used by this sender in this conversation,
     * nothing is appended and the original message comes back (`created: false`).
     */
    async sendMessage(
      actor: string,
      conversationId: string,
      input: { content: string; content_type: ContentType; media: MediaRef | null; client_message_id: string | null },
      requestId?: string,
    ): Promise<{ message: MessageView; created: boolean; position: Position | null }> {
      const streamId = conversationStreamId(conversationId);
      if (unheld(streamId)) await gate(actor, conversationId);
      const outcome: CommandOutcome<{ originalVersion: number | null }> = await worker.execute(
        streamId,
        { type: 'SendMessage', data: { actor, message_id: newId(), ...input }, metadata: { now: now() } },
        (state, appended) => {
          if (appended.length > 0 || input.client_message_id === null) return { originalVersion: null };
          return { originalVersion: clientMessageVersion(active(state), actor, input.client_message_id) ?? null };
        },
        meta(actor, requestId),
      );
      const sent = outcome.events[0];
      if (sent) {
        if (sent.type !== 'MessageSent') throw new Error(`SendMessage appended a ${sent.type}`);
        return { message: { ...sent.data, conversation_id: conversationId, sequence_number: sent.version }, created: true, position: outcome.position };
      }
      const version = outcome.value.originalVersion;
      if (version === null) throw new Error('send appended nothing and found no original message');
      const [original] = await store.readStream(streamId, { from: version, maxCount: 1 });
      if (original?.type !== 'MessageSent') throw new Error(`event ${streamId}@${version} is not a MessageSent`);
      const data = MessageSent.shape.data.parse(original.data);
      return {
        message: { ...data, conversation_id: conversationId, sequence_number: version },
        created: false,
        position: { shard: original.shard, position: original.position },
      };
    },

    async react(
      actor: string,
      conversationId: string,
      message: { message_id: string; sequence_number: number },
      emoji: string,
      action: 'add' | 'remove',
      requestId?: string,
    ) {
      const streamId = conversationStreamId(conversationId);
      if (unheld(streamId)) await gate(actor, conversationId);
      const outcome = await worker.execute(
        streamId,
        {
          type: action === 'add' ? 'AddReaction' : 'RemoveReaction',
          data: {
            actor,
            message_id: message.message_id,
            message_version: message.sequence_number,
            emoji,
            stored_message_id: await storedMessageId(streamId, message.sequence_number),
          },
          metadata: { now: now() },
        },
        () => null,
        meta(actor, requestId),
      );
      return { changed: outcome.events.length > 0, position: outcome.position };
    },

    /** Moves the caller's delivered or read watermark forward to `upToVersion` (never back). */
    async markWatermark(
      actor: string,
      conversationId: string,
      input: { device_id: string; up_to_version: number; kind: 'delivered' | 'read' },
      requestId?: string,
    ) {
      const streamId = conversationStreamId(conversationId);
      if (unheld(streamId)) await gate(actor, conversationId);
      const outcome = await worker.execute(
        streamId,
        {
          type: input.kind === 'read' ? 'MarkRead' : 'MarkDelivered',
          data: { actor, device_id: input.device_id, up_to_version: input.up_to_version },
          metadata: { now: now() },
        },
        (state) => {
          const w = active(state).userWatermarks.get(actor) ?? { delivered: 0, read: 0 };
          return { delivered_up_to: w.delivered, read_up_to: w.read };
        },
        meta(actor, requestId),
      );
      return { changed: outcome.events.length > 0, watermarks: outcome.value, position: outcome.position };
    },

    access,

    /**
     * Who `actor` may be in each conversation, without reading their streams (see Screening):
     * what a replay for someone who may be a stranger asks first.
     */
    screen,

    /**
     * The members other than `actor`, after the same checks as `access` (404, 403): who a
     * signal of the actor in that conversation (typing) is for.
     */
    async otherMembers(actor: string, conversationId: string): Promise<string[]> {
      const streamId = conversationStreamId(conversationId);
      if (unheld(streamId)) await gate(actor, conversationId);
      const seen = admitted(
        await worker.read(streamId, (state) => {
          if (state.status !== 'active') return null;
          if (!state.members.has(actor)) return { member: null, others: [] };
          const others: string[] = [];
          for (const id of state.members.keys()) if (id !== actor) others.push(id);
          return { member: {}, others };
        }),
      );
      return seen.others;
    },

    /** The conversation as the command side sees it now (members, roles, version), for a member. */
    async describe(actor: string, conversationId: string): Promise<ConversationView> {
      await access(actor, conversationId);
      return worker.read(conversationStreamId(conversationId), (state) => viewOf(active(state)));
    },
  };
}
