import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { decodeClientFrame, decodeServerFrame, encodeClientFrame, encodeServerFrame, fieldPath, peekRequestId, validateClientFrame } from './codec.js';
import type { ClientFrame } from './frames.js';
import { ContentType, PresenceStatus } from './gen/chat/v1/common_pb.js';
import { ClientFrameSchema as PbClientFrame, ServerFrameSchema as PbServerFrame } from './gen/chat/v1/frames_pb.js';
import { MAX_CLIENT_MESSAGE_ID_LENGTH, MAX_CONTENT_BYTES, MAX_CURSORS, MAX_FRAME_BYTES, MAX_ID_LENGTH, MAX_VERSION } from './limits.js';
import { CLIENT_SAMPLES, CONVERSATION_ID, SERVER_SAMPLES } from './testing/samples.js';

/** A protobuf tag (field number and wire type) as varint bytes. */
function tag(field: number, wireType: number): number[] {
  const out: number[] = [];
  let v = field * 8 + wireType;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

const oneofCases = (schema: typeof PbClientFrame | typeof PbServerFrame) => schema.oneofs[0]!.fields.map((f) => f.localName).sort();

/** A frame with one field changed, for validation cases. */
function sendMessage(value: Partial<Extract<ClientFrame['body'], { case: 'sendMessage' }>['value']>, requestId = 9): ClientFrame {
  return {
    requestId,
    body: { case: 'sendMessage', value: { conversationId: CONVERSATION_ID, clientMessageId: 'cm', content: 'x', contentType: ContentType.TEXT, ...value } },
  };
}

function expectInvalid(frame: ClientFrame, field: string) {
  const result = decodeClientFrame(encodeClientFrame(frame));
  expect(result).toMatchObject({ ok: false, error: { code: 'validation', field, requestId: frame.requestId } });
  if (!result.ok) expect(result.error.message.startsWith(`${field}: `)).toBe(true);
}

describe('client frames', () => {
  it('has a sample of every client frame type', () => {
    expect(Object.keys(CLIENT_SAMPLES).sort()).toEqual(oneofCases(PbClientFrame));
  });

  it.each(Object.entries(CLIENT_SAMPLES).flatMap(([name, frames]) => frames.map((frame, i) => [`${name} #${i}`, frame] as const)))(
    'round-trips %s through bytes, decoded and validated',
    (_name, frame) => {
      const bytes = encodeClientFrame(frame);
      expect(decodeClientFrame(bytes)).toEqual({ ok: true, frame });
      // An ArrayBuffer (what uWebSockets.js hands over) decodes the same.
      expect(decodeClientFrame(bytes.slice().buffer)).toEqual({ ok: true, frame });
    },
  );

  it('validates ids, sizes, versions and enums after decoding', () => {
    expectInvalid(sendMessage({ conversationId: '' }), 'send_message.conversation_id');
    expectInvalid(sendMessage({ conversationId: 'c'.repeat(MAX_ID_LENGTH + 1) }), 'send_message.conversation_id');
    expectInvalid(sendMessage({ clientMessageId: '' }), 'send_message.client_message_id');
    expectInvalid(sendMessage({ clientMessageId: 'c'.repeat(MAX_CLIENT_MESSAGE_ID_LENGTH + 1) }), 'send_message.client_message_id');
    expectInvalid(sendMessage({ contentType: ContentType.UNSPECIFIED }), 'send_message.content_type');
    expectInvalid(sendMessage({ contentType: 42 as ContentType }), 'send_message.content_type');
    expectInvalid(sendMessage({ mediaId: '' }), 'send_message.media_id');
    expectInvalid({ requestId: 1, body: { case: 'markRead', value: { conversationId: 'c', upToVersion: 0 } } }, 'mark_read.up_to_version');
    expectInvalid({ requestId: 1, body: { case: 'setPresence', value: { status: PresenceStatus.UNSPECIFIED } } }, 'set_presence.status');
    expectInvalid({ requestId: 1, body: { case: 'sync', value: { cursors: [] } } }, 'sync.cursors');
    expectInvalid({ requestId: 1, body: { case: 'hello', value: { token: 't', protocolVersion: 0, deviceId: 'd', cursors: [] } } }, 'hello.protocol_version');
    expectInvalid({ requestId: 1, body: { case: 'hello', value: { token: 't', protocolVersion: 1, deviceId: '', cursors: [] } } }, 'hello.device_id');
    expectInvalid(
      {
        requestId: 1,
        body: {
          case: 'hello',
          value: { token: 't', protocolVersion: 1, deviceId: 'd', cursors: [{ conversationId: 'a', lastVersion: 1 }, { conversationId: 'a', lastVersion: 2 }] },
        },
      },
      'hello.cursors[1].conversation_id',
    );
    const tooMany = Array.from({ length: MAX_CURSORS + 1 }, (_, i) => ({ conversationId: `c${i}`, lastVersion: i }));
    expectInvalid({ requestId: 1, body: { case: 'sync', value: { cursors: tooMany } } }, 'sync.cursors');
  });

  it('refuses what the store cannot hold: NUL, noncharacters and control characters in ids, versions past 2^31-1', () => {
    expectInvalid(sendMessage({ content: 'a\u0000b' }), 'send_message.content');
    expectInvalid(sendMessage({ content: 'a\uffffb' }), 'send_message.content');
    expectInvalid(sendMessage({ conversationId: 'c\u0000' }), 'send_message.conversation_id');
    expectInvalid(sendMessage({ clientMessageId: 'c\u0000' }), 'send_message.client_message_id');
    expectInvalid(sendMessage({ mediaId: 'm\n' }), 'send_message.media_id');
    expectInvalid({ requestId: 1, body: { case: 'typing', value: { conversationId: '\u0000', isTyping: true } } }, 'typing.conversation_id');
    expectInvalid({ requestId: 1, body: { case: 'hello', value: { token: 't', protocolVersion: 1, deviceId: 'd\u0000', cursors: [] } } }, 'hello.device_id');
    expectInvalid({ requestId: 1, body: { case: 'ackDelivered', value: { conversationId: 'c', upToVersion: MAX_VERSION + 1 } } }, 'ack_delivered.up_to_version');
    expectInvalid({ requestId: 1, body: { case: 'sync', value: { cursors: [{ conversationId: 'c', lastVersion: 2 ** 40 }] } } }, 'sync.cursors[0].last_version');
    expectInvalid({ requestId: 1, body: { case: 'sync', value: { cursors: [{ conversationId: 'c\u0000', lastVersion: 0 }] } } }, 'sync.cursors[0].conversation_id');
    // Multi-line text and every script are content as usual.
    expect(decodeClientFrame(encodeClientFrame(sendMessage({ content: 'line one\nline two 東京 😀' }))).ok).toBe(true);
  });

  it('counts content in UTF-8 bytes, not characters', () => {
    const fits = '€'.repeat(MAX_CONTENT_BYTES / 4) + '😀'.repeat(MAX_CONTENT_BYTES / 16); // 3 and 4 bytes each
    expect(new TextEncoder().encode(fits).length).toBe(MAX_CONTENT_BYTES);
    expect(decodeClientFrame(encodeClientFrame(sendMessage({ content: fits }))).ok).toBe(true);
    expectInvalid(sendMessage({ content: `${fits}a` }), 'send_message.content');
    expectInvalid(sendMessage({ content: 'a'.repeat(MAX_CONTENT_BYTES + 1) }), 'send_message.content');
    expectInvalid(sendMessage({ content: '€'.repeat(MAX_CONTENT_BYTES / 3 + 1) }), 'send_message.content');
  });

  it('refuses 64-bit values beyond 2^53-1 instead of rounding them', () => {
    const bytes = toBinary(
      PbClientFrame,
      create(PbClientFrame, { requestId: 5, body: { case: 'ackDelivered', value: { conversationId: 'c', upToVersion: 2n ** 53n } } }),
    );
    expect(decodeClientFrame(bytes)).toMatchObject({ ok: false, error: { code: 'validation', field: 'ack_delivered.up_to_version', requestId: 5 } });
    const max = toBinary(PbClientFrame, create(PbClientFrame, { requestId: 5, body: { case: 'ping', value: { clientTimeMs: 2n ** 64n - 1n } } }));
    expect(decodeClientFrame(max)).toMatchObject({ ok: false, error: { code: 'validation', field: 'ping.client_time_ms' } });
  });

  it('answers a frame type it does not know with unknown_frame and its request id', () => {
    // request_id 77, then field 40 (a future frame type) holding an empty message.
    const bytes = new Uint8Array([0x08, 77, ...tag(40, 2), 0]);
    expect(decodeClientFrame(bytes)).toEqual({
      ok: false,
      error: { code: 'unknown_frame', message: expect.any(String), requestId: 77 },
    });
  });

  it('skips unknown fields next to a known body (a newer client adding fields)', () => {
    const frame = CLIENT_SAMPLES.typing[0]!;
    const extra = new Uint8Array([...tag(3, 0), 1, ...tag(99, 2), 2, 0x0a, 0x0b]);
    const result = decodeClientFrame(new Uint8Array([...encodeClientFrame(frame), ...extra]));
    expect(result).toEqual({ ok: true, frame });
  });

  it('calls an empty frame or a server frame sent by mistake malformed, not a crash', () => {
    expect(decodeClientFrame(new Uint8Array())).toMatchObject({ ok: false, error: { code: 'malformed_frame', requestId: 0 } });
    expect(decodeClientFrame(new Uint8Array([0x08, 3]))).toMatchObject({ ok: false, error: { code: 'malformed_frame', requestId: 3 } });
    expect(decodeClientFrame('hello' as unknown as Uint8Array)).toMatchObject({ ok: false, error: { code: 'malformed_frame' } });
  });

  it('rejects oversized frames before decoding them, with the request id read from the front', () => {
    const big = sendMessage({ content: 'a'.repeat(MAX_CONTENT_BYTES) }, 1234);
    const padded = encodeClientFrame(big);
    expect(padded.length).toBeLessThan(MAX_FRAME_BYTES); // the same frame under the limit is fine
    // Over the limit: a valid frame followed by an unknown field that makes it too long. Decoding
    // it would succeed, so frame_too_large proves the size check comes first.
    const filler = MAX_FRAME_BYTES - padded.length;
    const oversized = new Uint8Array([...padded, ...tag(99, 2), 0x80 | (filler & 0x7f), filler >> 7, ...new Uint8Array(filler)]);
    expect(oversized.length).toBeGreaterThan(MAX_FRAME_BYTES);
    expect(decodeClientFrame(oversized)).toMatchObject({ ok: false, error: { code: 'frame_too_large', requestId: 1234 } });

    // A huge buffer is refused at once, whatever it holds.
    const huge = new Uint8Array(32 * 1024 * 1024).fill(0xff);
    const started = performance.now();
    expect(decodeClientFrame(huge)).toMatchObject({ ok: false, error: { code: 'frame_too_large', requestId: 0 } });
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('validateClientFrame lets the SDK check a frame before sending it', () => {
    expect(validateClientFrame(CLIENT_SAMPLES.ping[0]!)).toEqual({ ok: true, frame: CLIENT_SAMPLES.ping[0] });
    expect(validateClientFrame(sendMessage({ content: 'a'.repeat(MAX_CONTENT_BYTES + 1) }, 3))).toMatchObject({
      ok: false,
      error: { code: 'validation', field: 'send_message.content', requestId: 3 },
    });
  });
});

describe('server frames', () => {
  it('has a sample of every server frame type', () => {
    expect(Object.keys(SERVER_SAMPLES).sort()).toEqual(oneofCases(PbServerFrame));
  });

  it.each(Object.entries(SERVER_SAMPLES).flatMap(([name, frames]) => frames.map((frame, i) => [`${name} #${i}`, frame] as const)))(
    'round-trips %s through bytes',
    (_name, frame) => {
      expect(decodeServerFrame(encodeServerFrame(frame))).toEqual({ ok: true, frame });
    },
  );

  it('tells an SDK about a frame type it does not know, and about garbage, without throwing', () => {
    expect(decodeServerFrame(new Uint8Array([...tag(50, 2), 0]))).toMatchObject({ ok: false, error: { code: 'unknown_frame' } });
    expect(decodeServerFrame(new Uint8Array([0xff, 0xff, 0xff]))).toMatchObject({ ok: false, error: { code: 'malformed_frame' } });
  });

  it('throws on a caller bug when encoding: a fraction where the protocol has a 64-bit integer', () => {
    const { body } = SERVER_SAMPLES.sendAck[0]!;
    if (body.case !== 'sendAck') throw new Error('sample');
    const value = { ...body.value, sequenceNumber: 1.5 };
    expect(() => encodeServerFrame({ requestId: 1, body: { case: 'sendAck', value } })).toThrow(/safe integer/);
  });
});

describe('helpers', () => {
  it('peekRequestId reads a leading request_id varint and nothing else', () => {
    expect(peekRequestId(new Uint8Array([0x08, 0x96, 0x01, 0xff]))).toBe(150);
    expect(peekRequestId(new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toBe(0xffff_ffff);
    expect(peekRequestId(new Uint8Array([0x08, 0x80]))).toBe(0); // truncated
    expect(peekRequestId(new Uint8Array([0x10, 0x05]))).toBe(0); // another field first
    expect(peekRequestId(new Uint8Array())).toBe(0);
  });

  it('fieldPath names fields as the .proto does', () => {
    expect(fieldPath(['body', 'value', 'cursors', 3, 'conversationId'], 'hello')).toBe('hello.cursors[3].conversation_id');
    expect(fieldPath(['requestId'])).toBe('request_id');
    expect(fieldPath([])).toBe('frame');
  });
});
