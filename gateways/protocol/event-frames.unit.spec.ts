import { describe, expect, it } from 'vitest';
import { CONVERSATION_EVENT_TYPES, ConversationEvent } from '../../domain/conversation/events.js';
import { decodeServerFrame, encodeServerFrame } from './codec.js';
import { EventFrameError, eventFrame, fromEventFrame, toEventFrame } from './event-frames.js';
import type { EventFrame } from './frames.js';
import type { ContentType } from './gen/chat/v1/common_pb.js';
import { EventSchema } from './gen/chat/v1/events_pb.js';
import { CONVERSATION_ID, DOMAIN_EVENTS, stored } from './testing/samples.js';

/** Through the wire and back: stored event -> Event frame -> bytes -> frame -> domain event. */
function overTheWire(frame: EventFrame): EventFrame {
  const decoded = decodeServerFrame(encodeServerFrame(eventFrame(frame)));
  if (!decoded.ok || decoded.frame.body.case !== 'event') throw new Error(`not an event frame: ${JSON.stringify(decoded)}`);
  return decoded.frame.body.value;
}

describe('Event frames', () => {
  it('has samples of every domain event type, and the proto a payload for each', () => {
    expect(new Set(DOMAIN_EVENTS.map((e) => e.type))).toEqual(new Set(CONVERSATION_EVENT_TYPES));
    expect(EventSchema.oneofs[0]!.fields).toHaveLength(CONVERSATION_EVENT_TYPES.length);
  });

  it.each(DOMAIN_EVENTS.map((event, i) => [`${event.type} #${i}`, event, i] as const))(
    'round-trips %s to exactly what the domain schema parses',
    (_name, event, i) => {
      const version = i + 2;
      const frame = toEventFrame(stored(event, version), { previousVersion: i });
      expect(frame).toMatchObject({ conversationId: CONVERSATION_ID, version, previousVersion: i });

      const back = fromEventFrame(overTheWire(frame));
      if (!back.ok) throw new Error(back.error.message);
      const { type, data, ...position } = back.event;
      expect({ type, data }).toStrictEqual(ConversationEvent.parse({ type: event.type, data: event.data }));
      expect(position).toStrictEqual({
        conversation_id: CONVERSATION_ID,
        version,
        previous_version: i,
        event_id: stored(event, version).event_id,
        created_at: '2025-03-04T05:06:08.001Z',
      });
    },
  );

  it('keeps the instant of a time written without milliseconds (and writes it back as toISOString does)', () => {
    const event = { type: 'MemberRemoved', data: { user_id: 'u', removed_by: 'u', removed_at: '2025-03-04T05:06:07Z' } } as const;
    const back = fromEventFrame(overTheWire(toEventFrame(stored(event, 3))));
    expect(back).toMatchObject({ ok: true, event: { data: { removed_at: '2025-03-04T05:06:07.000Z' }, previous_version: 0 } });
  });

  it('refuses, loudly, stored events that are not conversation events the domain accepts', () => {
    const event = DOMAIN_EVENTS[0]!;
    expect(() => toEventFrame({ ...stored(event, 1), stream_id: 'user-1' })).toThrow(EventFrameError);
    expect(() => toEventFrame({ ...stored(event, 1), type: 'Renamed' })).toThrow(EventFrameError);
    expect(() => toEventFrame({ ...stored(event, 1), data: { nonsense: true } })).toThrow(EventFrameError);
  });

  it('fromEventFrame reports what it cannot map, without throwing', () => {
    const frame = toEventFrame(stored(DOMAIN_EVENTS[4]!, 7), { previousVersion: 6 });
    if (frame.payload.case !== 'messageSent') throw new Error('sample');
    const message = frame.payload.value;
    const variants: [string, EventFrame, 'unknown_event' | 'invalid_event'][] = [
      ['unknown payload', { ...frame, payload: { case: undefined } }, 'unknown_event'],
      ['unknown content type', { ...frame, payload: { case: 'messageSent', value: { ...message, contentType: 99 as ContentType } } }, 'invalid_event'],
      ['time out of range', { ...frame, payload: { case: 'messageSent', value: { ...message, createdAtMs: 9e15 } } }, 'invalid_event'],
      ['empty sender (domain schema)', { ...frame, payload: { case: 'messageSent', value: { ...message, senderId: '' } } }, 'invalid_event'],
      ['previous_version not below version', { ...frame, previousVersion: 7 }, 'invalid_event'],
      ['version 0', { ...frame, version: 0, previousVersion: 0 }, 'invalid_event'],
      ['empty conversation id', { ...frame, conversationId: '' }, 'invalid_event'],
    ];
    for (const [name, variant, code] of variants) {
      expect({ name, result: fromEventFrame(variant) }).toMatchObject({ name, result: { ok: false, error: { code } } });
    }
  });
});
