import type { ContentType as DomainContentType } from '../../domain/conversation/events.js';
import type { ServerFrame, ServerMessage } from './frames.js';
import { ContentType, PresenceStatus } from './gen/chat/v1/common_pb.js';
import { ConversationKind } from './gen/chat/v1/events_pb.js';

/**
 * Small translations between the domain's vocabulary (snake_case strings, ISO-8601 times) and the
 * wire's (enums, Unix milliseconds), shared by the gateway and the SDK.
 */

/** The domain's presence states (the same strings as gateways/ports/presence.ts and the REST API). */
export type PresenceStatusName = 'online' | 'away' | 'offline';

const CONTENT_TYPES: Readonly<Record<DomainContentType, ContentType>> = Object.freeze({
  text: ContentType.TEXT,
  image: ContentType.IMAGE,
  video: ContentType.VIDEO,
  file: ContentType.FILE,
});

const PRESENCE: Readonly<Record<PresenceStatusName, PresenceStatus>> = Object.freeze({
  online: PresenceStatus.ONLINE,
  away: PresenceStatus.AWAY,
  offline: PresenceStatus.OFFLINE,
});

const KINDS: Readonly<Record<'direct' | 'group', ConversationKind>> = Object.freeze({
  direct: ConversationKind.DIRECT,
  group: ConversationKind.GROUP,
});

const reverse = <K extends string, V>(record: Readonly<Record<K, V>>) => new Map((Object.entries(record) as [K, V][]).map(([k, v]) => [v, k]));
const CONTENT_TYPE_NAMES = reverse(CONTENT_TYPES);
const PRESENCE_NAMES = reverse(PRESENCE);
const KIND_NAMES = reverse(KINDS);

export const contentTypeToProto = (contentType: DomainContentType): ContentType => CONTENT_TYPES[contentType];
/** undefined for UNSPECIFIED and values this build does not know. */
export const contentTypeFromProto = (contentType: ContentType | number): DomainContentType | undefined => CONTENT_TYPE_NAMES.get(contentType);

export const presenceStatusToProto = (status: PresenceStatusName): PresenceStatus => PRESENCE[status];
/** undefined for UNSPECIFIED and values this build does not know. */
export const presenceStatusFromProto = (status: PresenceStatus | number): PresenceStatusName | undefined => PRESENCE_NAMES.get(status);

export const conversationKindToProto = (kind: 'direct' | 'group'): ConversationKind => KINDS[kind];
export const conversationKindFromProto = (kind: ConversationKind | number): 'direct' | 'group' | undefined => KIND_NAMES.get(kind);

/** ISO-8601 -> Unix ms. Throws on an unparsable time (times come from our own clock). */
export function isoToMs(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new RangeError(`not an ISO-8601 time: ${JSON.stringify(iso)}`);
  return ms;
}

/** Unix ms -> ISO-8601 (as Date#toISOString writes it); undefined when out of Date's range. */
export function msToIso(ms: number): string | undefined {
  if (!Number.isSafeInteger(ms)) return undefined;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** A PresenceEvent push from the presence store's view of a user (last_seen null -> 0). */
export function presenceFrame(presence: { user_id: string; status: PresenceStatusName; last_seen: string | null }): ServerFrame {
  const lastSeenMs = presence.last_seen === null ? 0 : isoToMs(presence.last_seen);
  return { requestId: 0, body: { case: 'presence', value: { userId: presence.user_id, status: presenceStatusToProto(presence.status), lastSeenMs } } };
}

/** The SDK's view of a PresenceEvent; undefined for a status this build does not know. */
export function fromPresenceEvent(
  event: ServerMessage<'presence'>,
): { user_id: string; status: PresenceStatusName; last_seen: string | null } | undefined {
  const status = presenceStatusFromProto(event.status);
  if (status === undefined) return undefined;
  const lastSeen = event.lastSeenMs === 0 ? null : (msToIso(event.lastSeenMs) ?? null);
  return { user_id: event.userId, status, last_seen: lastSeen };
}

/** A TypingEvent push. */
export function typingFrame(change: { conversation_id: string; user_id: string; is_typing: boolean }, expiresInMs = 0): ServerFrame {
  return {
    requestId: 0,
    body: { case: 'typing', value: { conversationId: change.conversation_id, userId: change.user_id, isTyping: change.is_typing, expiresInMs } },
  };
}

/** Why a node asks its connections to sync (SyncRequired.reason). */
export type SyncRequiredReason = 'bus_reconnected' | 'presence_reconnected' | 'presence_lost' | 'delivery_stalled' | 'sync_failed';

/**
 * SyncRequired: deliveries to the connection may have been lost. `conversationIds` empty: every
 * conversation the client follows; `withinMs`: the client spreads its Syncs over that long.
 */
export function syncRequiredFrame(reason: SyncRequiredReason, withinMs: number, conversationIds: string[] = []): ServerFrame {
  return { requestId: 0, body: { case: 'syncRequired', value: { conversationIds, withinMs, reason } } };
}
