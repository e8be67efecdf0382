import type { ConversationEvent } from '../../../domain/conversation/events.js';
import type { StoredEventLike } from '../event-frames.js';
import type { ClientFrame, ClientFrameCase, ServerFrame, ServerFrameCase } from '../frames.js';
import { ContentType, ErrorCode, PresenceStatus } from '../gen/chat/v1/common_pb.js';
import { ConversationKind } from '../gen/chat/v1/events_pb.js';
import { MAX_VERSION } from '../limits.js';

/**
 * One sample (or more) of every frame type and every domain event, for round-trip tests and as
 * seeds of the fuzz test. The specs check that every oneof case of the protocol has a sample, so
 * a new frame type cannot ship without one.
 */

export const CONVERSATION_ID = '0b7c4a52-0a7e-4a38-9a43-2f1b5d8f7c11';
const ALICE = 'u-alice-5a2f';
const BOB = 'u-bob-81cc';
const T = '2025-03-04T05:06:07.890Z';
const T_MS = Date.parse(T);

export const CLIENT_SAMPLES: Record<ClientFrameCase, ClientFrame[]> = {
  hello: [
    {
      requestId: 1,
      body: {
        case: 'hello',
        value: {
          token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LWFsaWNlIn0.c2lnbmF0dXJl',
          protocolVersion: 1,
          deviceId: 'phone-1',
          cursors: [
            { conversationId: CONVERSATION_ID, lastVersion: 41 },
            { conversationId: 'c-2', lastVersion: 0 },
          ],
        },
      },
    },
    { requestId: 0, body: { case: 'hello', value: { token: '', protocolVersion: 7, deviceId: 'd', cursors: [] } } },
  ],
  sendMessage: [
    {
      requestId: 2,
      body: {
        case: 'sendMessage',
        value: { conversationId: CONVERSATION_ID, clientMessageId: 'cm-1', content: 'héllo 👋', contentType: ContentType.TEXT },
      },
    },
    {
      requestId: 0xffff_ffff,
      body: {
        case: 'sendMessage',
        value: { conversationId: CONVERSATION_ID, clientMessageId: 'x'.repeat(128), content: '', contentType: ContentType.IMAGE, mediaId: 'media-1' },
      },
    },
  ],
  ackDelivered: [{ requestId: 3, body: { case: 'ackDelivered', value: { conversationId: CONVERSATION_ID, upToVersion: 42 } } }],
  markRead: [{ requestId: 4, body: { case: 'markRead', value: { conversationId: CONVERSATION_ID, upToVersion: MAX_VERSION } } }],
  typing: [
    { requestId: 5, body: { case: 'typing', value: { conversationId: CONVERSATION_ID, isTyping: true } } },
    { requestId: 0, body: { case: 'typing', value: { conversationId: CONVERSATION_ID, isTyping: false } } },
  ],
  setPresence: [{ requestId: 6, body: { case: 'setPresence', value: { status: PresenceStatus.AWAY } } }],
  ping: [{ requestId: 7, body: { case: 'ping', value: { clientTimeMs: T_MS } } }],
  sync: [{ requestId: 8, body: { case: 'sync', value: { cursors: [{ conversationId: CONVERSATION_ID, lastVersion: 17 }] } } }],
  reauthenticate: [
    { requestId: 9, body: { case: 'reauthenticate', value: { token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LWFsaWNlIn0.bmV3LXNpZ25hdHVyZQ' } } },
    { requestId: 0, body: { case: 'reauthenticate', value: { token: '' } } },
  ],
};

export const SERVER_SAMPLES: Record<ServerFrameCase, ServerFrame[]> = {
  welcome: [
    {
      requestId: 1,
      body: {
        case: 'welcome',
        value: { userId: ALICE, protocolVersion: 1, sessionId: 's-1', heartbeatIntervalMs: 30_000, serverTimeMs: T_MS, maxFrameBytes: 131_072 },
      },
    },
  ],
  sendAck: [
    {
      requestId: 2,
      body: { case: 'sendAck', value: { conversationId: CONVERSATION_ID, messageId: 'm-1', sequenceNumber: 43, createdAtMs: T_MS, duplicate: true } },
    },
  ],
  ok: [{ requestId: 3, body: { case: 'ok', value: {} } }],
  error: [
    {
      requestId: 2,
      body: {
        case: 'error',
        value: { code: ErrorCode.VALIDATION, message: 'send_message.content: too long', retryable: false, field: 'send_message.content', reason: 'validation', retryAfterMs: 0 },
      },
    },
    {
      requestId: 0,
      body: { case: 'error', value: { code: ErrorCode.RATE_LIMITED, message: 'slow down', retryable: true, reason: 'rate_limited', retryAfterMs: 1500 } },
    },
  ],
  event: [
    {
      requestId: 0,
      body: {
        case: 'event',
        value: {
          conversationId: CONVERSATION_ID,
          version: 43,
          eventId: 'e-43',
          createdAtMs: T_MS,
          previousVersion: 41,
          payload: {
            case: 'messageSent',
            value: { messageId: 'm-1', senderId: ALICE, content: 'hi', contentType: ContentType.TEXT, clientMessageId: 'cm-1', createdAtMs: T_MS },
          },
        },
      },
    },
    {
      requestId: 0,
      body: {
        case: 'event',
        value: {
          conversationId: CONVERSATION_ID,
          version: 1,
          eventId: 'e-1',
          createdAtMs: T_MS,
          previousVersion: 0,
          payload: {
            case: 'conversationCreated',
            value: { conversationId: CONVERSATION_ID, kind: ConversationKind.GROUP, createdBy: ALICE, members: [ALICE, BOB], name: 'team', createdAtMs: T_MS },
          },
        },
      },
    },
  ],
  syncDone: [
    { requestId: 0, body: { case: 'syncDone', value: { conversationId: CONVERSATION_ID, version: 43, accessEnded: false } } },
    { requestId: 0, body: { case: 'syncDone', value: { conversationId: 'c-2', version: 0, accessEnded: true } } },
  ],
  typing: [{ requestId: 0, body: { case: 'typing', value: { conversationId: CONVERSATION_ID, userId: BOB, isTyping: true, expiresInMs: 3000 } } }],
  presence: [
    { requestId: 0, body: { case: 'presence', value: { userId: BOB, status: PresenceStatus.OFFLINE, lastSeenMs: T_MS } } },
    { requestId: 0, body: { case: 'presence', value: { userId: BOB, status: PresenceStatus.ONLINE, lastSeenMs: 0 } } },
  ],
  pong: [{ requestId: 7, body: { case: 'pong', value: { clientTimeMs: T_MS, serverTimeMs: T_MS + 12 } } }],
  goodbye: [{ requestId: 0, body: { case: 'goodbye', value: { closeCode: 4000, reason: 'node draining', reconnectAfterMs: 250 } } }],
  syncRequired: [
    { requestId: 0, body: { case: 'syncRequired', value: { conversationIds: [], withinMs: 2_000, reason: 'bus_reconnected' } } },
    { requestId: 0, body: { case: 'syncRequired', value: { conversationIds: [CONVERSATION_ID, 'c-2'], withinMs: 0, reason: 'presence_lost' } } },
  ],
};

/** Every domain event type, in every shape worth telling apart (nulls, optional media fields). */
export const DOMAIN_EVENTS: ConversationEvent[] = [
  {
    type: 'ConversationCreated',
    data: { conversation_id: CONVERSATION_ID, kind: 'direct', created_by: ALICE, members: [ALICE, BOB], name: null, description: null, created_at: T },
  },
  {
    type: 'ConversationCreated',
    data: { conversation_id: CONVERSATION_ID, kind: 'group', created_by: ALICE, members: [ALICE], name: 'Team 🚀', description: '', created_at: T },
  },
  { type: 'MembersAdded', data: { user_ids: [BOB, 'u-carol'], added_by: ALICE, added_at: T } },
  { type: 'MemberRemoved', data: { user_id: BOB, removed_by: BOB, removed_at: T } },
  {
    type: 'MessageSent',
    data: { message_id: 'm-1', sender_id: ALICE, content: 'hello\nworld', content_type: 'text', media: null, client_message_id: 'cm-1', created_at: T },
  },
  {
    type: 'MessageSent',
    data: {
      message_id: 'm-2',
      sender_id: BOB,
      content: '',
      content_type: 'image',
      media: { media_id: 'media-9', mime_type: 'image/png', size_bytes: 104_857_600, file_name: 'cat.png' },
      client_message_id: null,
      created_at: '1970-01-01T00:00:00.000Z',
    },
  },
  {
    type: 'MessageSent',
    data: { message_id: 'm-3', sender_id: BOB, content: 'doc', content_type: 'file', media: { media_id: 'media-10' }, client_message_id: null, created_at: T },
  },
  { type: 'ReactionAdded', data: { message_id: 'm-1', message_version: 5, user_id: BOB, emoji: '👍', at: T } },
  { type: 'ReactionRemoved', data: { message_id: 'm-1', message_version: 5, user_id: BOB, emoji: '👍', at: T } },
  { type: 'Delivered', data: { user_id: BOB, device_id: 'laptop', up_to_version: 6, at: T } },
  { type: 'Read', data: { user_id: BOB, device_id: 'laptop', up_to_version: 6, at: T } },
];

/** A stored event as the store returns it. */
export function stored(event: ConversationEvent, version: number): StoredEventLike {
  return {
    type: event.type,
    data: event.data,
    stream_id: `conversation-${CONVERSATION_ID}`,
    version,
    event_id: `00000000-0000-4000-8000-${String(version).padStart(12, '0')}`,
    created_at: '2025-03-04T05:06:08.001Z',
  };
}
