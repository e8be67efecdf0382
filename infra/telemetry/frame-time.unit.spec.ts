import { describe, expect, it } from 'vitest';
import { encodeServerFrame } from '../../gateways/protocol/codec.js';
import { eventFrame, toEventFrame } from '../../gateways/protocol/event-frames.js';
import { DOMAIN_EVENTS, stored } from '../../gateways/protocol/testing/samples.js';
import { hasFieldAtPath, readStringAtPath, readVarintAtPath } from './frame-time.js';

/** The path gateway.ts reads: ServerFrame.event (8) → Event.message_sent (13) → MessageSent.created_at_ms (7). */
const MESSAGE_SENT_CREATED_AT_MS = [8, 13, 7];

describe('readVarintAtPath', () => {
  it('finds a MessageSent created_at_ms inside a real encoded Event frame', () => {
    const sends = DOMAIN_EVENTS.filter((e) => e.type === 'MessageSent');
    expect(sends.length).toBeGreaterThan(0);
    for (const [i, sample] of sends.entries()) {
      const createdAt = new Date(Date.UTC(2026, 10, 27, 23, 0, 0, 123 + i));
      const event = { ...sample, data: { ...sample.data, created_at: createdAt.toISOString() } } as typeof sample;
      const bytes = encodeServerFrame(eventFrame(toEventFrame(stored(event, i + 2), { previousVersion: i + 1 })));
      expect(readVarintAtPath(bytes, MESSAGE_SENT_CREATED_AT_MS)).toBe(createdAt.getTime());
    }
  });

  it('is undefined for every other event type', () => {
    for (const [i, event] of DOMAIN_EVENTS.entries()) {
      if (event.type === 'MessageSent') continue;
      const bytes = encodeServerFrame(eventFrame(toEventFrame(stored(event, i + 2))));
      expect(readVarintAtPath(bytes, MESSAGE_SENT_CREATED_AT_MS)).toBeUndefined();
    }
  });

  it('skips fields of every wire type, and reads multi-byte varints', () => {
    // field 1 varint 300 | field 2 fixed64 | field 3 len 2 | field 4 fixed32 | field 5 { field 1 varint 2^40 }
    const inner = [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
    const bytes = new Uint8Array([0x08, 0xac, 0x02, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x1a, 2, 9, 9, 0x25, 1, 2, 3, 4, 0x2a, inner.length, ...inner]);
    expect(readVarintAtPath(bytes, [1])).toBe(300);
    expect(readVarintAtPath(bytes, [5, 1])).toBe(2 ** 40);
    expect(readVarintAtPath(bytes, [5, 2])).toBeUndefined();
    expect(readVarintAtPath(bytes, [3])).toBeUndefined(); // not a varint
    expect(readVarintAtPath(bytes, [1, 1])).toBeUndefined(); // not a message
  });

  it('never throws on malformed or truncated bytes', () => {
    const good = encodeServerFrame(eventFrame(toEventFrame(stored(DOMAIN_EVENTS.find((e) => e.type === 'MessageSent')!, 2))));
    for (let n = 0; n < good.length; n++) expect(() => readVarintAtPath(good.subarray(0, n), MESSAGE_SENT_CREATED_AT_MS)).not.toThrow();
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: random() % 64 }, random);
      const value = readVarintAtPath(bytes, MESSAGE_SENT_CREATED_AT_MS);
      expect(value === undefined || Number.isSafeInteger(value)).toBe(true);
    }
    expect(readVarintAtPath(new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), [1])).toBeUndefined(); // -1 as int64
    expect(readVarintAtPath(new Uint8Array([0x08, 1]), [])).toBeUndefined();
  });
});

describe('hasFieldAtPath', () => {
  it("tells an Event frame's payload case from the bytes, for every event type", () => {
    const cases: Record<string, number> = { ConversationCreated: 10, MembersAdded: 11, MemberRemoved: 12, MessageSent: 13, ReactionAdded: 14, ReactionRemoved: 15, Delivered: 16, Read: 17 };
    const seen = new Set<string>();
    for (const [i, event] of DOMAIN_EVENTS.entries()) {
      const bytes = encodeServerFrame(eventFrame(toEventFrame(stored(event, i + 2))));
      for (const [type, field] of Object.entries(cases)) expect(hasFieldAtPath(bytes, [8, field])).toBe(type === event.type);
      seen.add(event.type);
    }
    expect([...seen].sort()).toEqual(Object.keys(cases).sort());
  });

  it('is false for a truncated frame and for an empty path', () => {
    const members = DOMAIN_EVENTS.find((e) => e.type === 'MembersAdded')!;
    const bytes = encodeServerFrame(eventFrame(toEventFrame(stored(members, 2))));
    expect(hasFieldAtPath(bytes, [8, 11])).toBe(true);
    expect(hasFieldAtPath(bytes.subarray(0, 1), [8, 11])).toBe(false);
    expect(hasFieldAtPath(bytes, [])).toBe(false);
  });
});

describe('readStringAtPath', () => {
  it("reads a MessageSent's sender and content out of a real encoded Event frame, as the full decode does", () => {
    for (const [i, event] of DOMAIN_EVENTS.entries()) {
      const bytes = encodeServerFrame(eventFrame(toEventFrame(stored(event, i + 2))));
      if (event.type === 'MessageSent') {
        const data = event.data as { sender_id: string; content: string };
        expect(readStringAtPath(bytes, [8, 13, 2])).toBe(data.sender_id);
        // proto3 leaves an empty string out: absent reads as undefined (a media message has no text)
        expect(readStringAtPath(bytes, [8, 13, 3]) ?? '').toBe(data.content);
      } else {
        expect(readStringAtPath(bytes, [8, 13, 3])).toBeUndefined();
      }
    }
  });

  it('reads multi-byte UTF-8 and long strings; refuses other wire types, truncation and invalid UTF-8', () => {
    const text = 'héllo ✓ '.repeat(40); // longer than 127 bytes: a two-byte length
    const encoded = new TextEncoder().encode(text);
    const len = [(encoded.length & 0x7f) | 0x80, encoded.length >> 7];
    const bytes = new Uint8Array([0x08, 0x05, 0x12, ...len, ...encoded]);
    expect(readStringAtPath(bytes, [2])).toBe(text);
    expect(readStringAtPath(bytes, [1])).toBeUndefined(); // a varint
    expect(readStringAtPath(bytes.subarray(0, bytes.length - 1), [2])).toBeUndefined(); // truncated
    expect(readStringAtPath(new Uint8Array([0x12, 2, 0xc3, 0x28]), [2])).toBeUndefined(); // not UTF-8
    expect(readStringAtPath(new Uint8Array([0x12, 0]), [2])).toBe('');
  });
});
