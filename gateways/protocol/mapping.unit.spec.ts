import { describe, expect, it } from 'vitest';
import { decodeServerFrame, encodeServerFrame } from './codec.js';
import { ContentType, PresenceStatus } from './gen/chat/v1/common_pb.js';
import { MIN_PROTOCOL_VERSION, negotiateProtocolVersion, PROTOCOL_VERSION } from './limits.js';
import {
  contentTypeFromProto,
  contentTypeToProto,
  fromPresenceEvent,
  isoToMs,
  msToIso,
  presenceFrame,
  presenceStatusFromProto,
  presenceStatusToProto,
  typingFrame,
} from './mapping.js';

describe('vocabulary between the domain and the wire', () => {
  it('maps every content type and presence status both ways, and refuses the unknown', () => {
    for (const name of ['text', 'image', 'video', 'file'] as const) expect(contentTypeFromProto(contentTypeToProto(name))).toBe(name);
    for (const name of ['online', 'away', 'offline'] as const) expect(presenceStatusFromProto(presenceStatusToProto(name))).toBe(name);
    expect(contentTypeFromProto(ContentType.UNSPECIFIED)).toBeUndefined();
    expect(contentTypeFromProto(77)).toBeUndefined();
    expect(presenceStatusFromProto(PresenceStatus.UNSPECIFIED)).toBeUndefined();
  });

  it('converts times without losing a millisecond', () => {
    expect(msToIso(isoToMs('2025-03-04T05:06:07.890Z'))).toBe('2025-03-04T05:06:07.890Z');
    expect(() => isoToMs('yesterday')).toThrow(RangeError);
    expect(msToIso(8.64e15 + 1)).toBeUndefined();
    expect(msToIso(0.5)).toBeUndefined();
  });

  it('builds presence and typing pushes that survive the wire', () => {
    const presence = { user_id: 'u-bob', status: 'offline' as const, last_seen: '2025-03-04T05:06:07.890Z' };
    const decoded = decodeServerFrame(encodeServerFrame(presenceFrame(presence)));
    if (!decoded.ok || decoded.frame.body.case !== 'presence') throw new Error('not a presence frame');
    expect(fromPresenceEvent(decoded.frame.body.value)).toEqual(presence);
    expect(fromPresenceEvent({ userId: 'u', status: PresenceStatus.ONLINE, lastSeenMs: 0 })).toEqual({ user_id: 'u', status: 'online', last_seen: null });
    expect(fromPresenceEvent({ userId: 'u', status: 9 as PresenceStatus, lastSeenMs: 0 })).toBeUndefined();

    const typing = decodeServerFrame(encodeServerFrame(typingFrame({ conversation_id: 'c', user_id: 'u', is_typing: true }, 3000)));
    expect(typing).toEqual({ ok: true, frame: { requestId: 0, body: { case: 'typing', value: { conversationId: 'c', userId: 'u', isTyping: true, expiresInMs: 3000 } } } });
  });
});

describe('protocol version negotiation', () => {
  it('speaks the newest version both sides know, and refuses clients older than the oldest it supports', () => {
    expect(negotiateProtocolVersion(PROTOCOL_VERSION)).toBe(PROTOCOL_VERSION);
    expect(negotiateProtocolVersion(PROTOCOL_VERSION + 5)).toBe(PROTOCOL_VERSION);
    expect(negotiateProtocolVersion(MIN_PROTOCOL_VERSION - 1)).toBeNull();
    expect(negotiateProtocolVersion(Number.NaN)).toBeNull();
  });
});
