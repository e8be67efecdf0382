import { toBinary, type DescMessage } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { random } from '../../domain/testing/random.js';
import { compileEncoder } from './binary-writer.js';
import { eventFrame, toEventFrame } from './event-frames.js';
import { ClientFrameSchema, ServerFrameSchema } from './gen/chat/v1/frames_pb.js';
import { toMessage } from './plain.js';
import { CLIENT_SAMPLES, DOMAIN_EVENTS, SERVER_SAMPLES, stored } from './testing/samples.js';

/** What protobuf-es writes for the same plain frame: the reference. */
const reference = (desc: DescMessage, plain: object) => toBinary(desc, toMessage(desc, plain as never));

const serverFrames = () => Object.values(SERVER_SAMPLES).flat();
const clientFrames = () => Object.values(CLIENT_SAMPLES).flat();

describe('compileEncoder', () => {
  const encodeServer = compileEncoder(ServerFrameSchema);
  const encodeClient = compileEncoder(ClientFrameSchema);

  it('writes every sample server and client frame byte for byte as protobuf-es does', () => {
    for (const frame of serverFrames()) expect(encodeServer(frame), frame.body.case).toEqual(reference(ServerFrameSchema, frame));
    for (const frame of clientFrames()) expect(encodeClient(frame), frame.body.case).toEqual(reference(ClientFrameSchema, frame));
  });

  it('writes every domain event as an Event frame byte for byte as protobuf-es does', () => {
    DOMAIN_EVENTS.forEach((event, i) => {
      const frame = eventFrame(toEventFrame(stored(event, i + 1), { previousVersion: i }));
      expect(encodeServer(frame), event.type).toEqual(reference(ServerFrameSchema, frame));
    });
  });

  it('agrees with protobuf-es on 3,000 frames with random texts, numbers and defaults, and refuses what it refuses', () => {
    const r = random(7);
    const texts = ['', 'a', 'héllo wörld', '👍🏽 emoji', 'x'.repeat(127), 'y'.repeat(128), 'z'.repeat(20_000), '\u0000nul', 'ѐ'.repeat(70)];
    const numbers = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
    /** A copy of `value` with every string and number swapped for a random one of the same kind. */
    const vary = (value: unknown, key = ''): unknown => {
      if (typeof value === 'string') return r.pick(texts);
      if (typeof value === 'number') return key === 'requestId' || key.endsWith('Version') || key.endsWith('Ms') || key === 'version' ? r.pick(numbers) : value;
      if (Array.isArray(value)) return value.map((v) => vary(v, key));
      if (value !== null && typeof value === 'object') {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(value)) out[k] = k === 'case' ? v : vary(v, k);
        return out;
      }
      return value;
    };
    const samples = [...serverFrames(), ...DOMAIN_EVENTS.map((event, i) => eventFrame(toEventFrame(stored(event, i + 1))))];
    let refused = 0;
    for (let i = 0; i < 3_000; i++) {
      const frame = vary(r.pick(samples)) as object;
      let expected: Uint8Array;
      try {
        expected = reference(ServerFrameSchema, frame);
      } catch {
        // a number out of its field's range (2^32 in a uint32): both refuse it
        refused++;
        expect(() => encodeServer(frame)).toThrow(TypeError);
        continue;
      }
      const actual = encodeServer(frame);
      // (Buffer.equals: a deep equality of 20 KB arrays 3,000 times would take the test's time)
      if (!Buffer.from(actual).equals(expected)) expect(actual).toEqual(expected);
    }
    expect(refused).toBeLessThan(1_000); // most frames were compared byte for byte
  });

  it('refuses a 64-bit field that is not a safe integer, as toMessage does', () => {
    const frame = eventFrame(toEventFrame(stored(DOMAIN_EVENTS[0]!, 1)));
    expect(() => encodeServer({ ...frame, requestId: 2 ** 53 })).toThrow(TypeError);
    expect(() => encodeServer({ ...frame, requestId: 1.5 })).toThrow(TypeError);
  });

  it('gives each frame its own bytes (the buffer it writes into is reused)', () => {
    const [a, b] = serverFrames();
    const first = encodeServer(a!);
    const copy = Uint8Array.from(first);
    encodeServer(b!);
    expect(first).toEqual(copy);
  });
});
