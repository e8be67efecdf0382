import { describe, expect, it } from 'vitest';
import { decodeClientFrame, decodeServerFrame, encodeClientFrame, encodeServerFrame, validateClientFrame, type DecodeErrorCode } from './codec.js';
import { MAX_FRAME_BYTES } from './limits.js';
import { CLIENT_SAMPLES, SERVER_SAMPLES } from './testing/samples.js';
import { random } from '../../domain/testing/random.js';

/**
 * decodeClientFrame never throws and always answers with a frame that passes validation or a
 * typed error: random bytes, truncations and bit flips of valid frames, unknown field numbers and
 * wire types, huge length prefixes, deep group nesting, oversized frames. Deterministic (seeded),
 * so a failure names the case that broke it.
 */

const SEED = 0x5eed_c0de;
const CASES = 12_000;

function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const tag = (field: number, wireType: number) => varint(BigInt(field) * 8n + BigInt(wireType));

const VALID = Object.values(CLIENT_SAMPLES)
  .flat()
  .map((frame) => encodeClientFrame(frame));
const VALID_SERVER = Object.values(SERVER_SAMPLES)
  .flat()
  .map((frame) => encodeServerFrame(frame));

type Rng = ReturnType<typeof random>;

const generators: Record<string, (rng: Rng) => Uint8Array> = {
  randomBytes: (rng) => Uint8Array.from({ length: rng.int(512) }, () => rng.int(256)),
  truncated: (rng) => {
    const frame = rng.pick(VALID);
    return frame.slice(0, rng.int(frame.length));
  },
  bitFlips: (rng) => {
    const frame = rng.pick(VALID).slice();
    for (let i = 1 + rng.int(8); i > 0; i--) frame[rng.int(frame.length)]! ^= 1 << rng.int(8);
    return frame;
  },
  unknownFields: (rng) => {
    // Fields this build does not know, with any wire type, some with a payload that fits, some not.
    const field = rng.pick([2, 3, 12, 15, 16, 40, 99, 100, 1000, 19_000, 2 ** 29 - 1, 2 ** 29, 0]);
    const wireType = rng.int(8);
    const payload = Array.from({ length: rng.int(12) }, () => rng.int(256));
    const extra = [...tag(field, wireType), ...(wireType === 2 ? varint(BigInt(payload.length)) : []), ...payload];
    const frame = rng.int(3) === 0 ? new Uint8Array() : rng.pick(VALID);
    return rng.int(2) === 0 ? new Uint8Array([...frame, ...extra]) : new Uint8Array([...extra, ...frame]);
  },
  hugeLengthPrefix: (rng) => {
    // A length-delimited field (a known frame or an unknown one) claiming far more than is there.
    const field = rng.pick([4, 5, 8, 11, 50, 1]);
    const length = rng.pick([2n ** 31n, 2n ** 32n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, BigInt(MAX_FRAME_BYTES)]);
    const lengthBytes = rng.int(5) === 0 ? new Array<number>(11).fill(0xff) : varint(length); // or an over-long varint
    const prefix = rng.int(2) === 0 ? [0x08, rng.int(128)] : [];
    return new Uint8Array([...prefix, ...tag(field, 2), ...lengthBytes, ...Array.from({ length: rng.int(16) }, () => rng.int(256))]);
  },
  deepGroups: (rng) => {
    // Start-group tags nested thousands deep (the decoder must not blow its stack).
    const depth = 50 + rng.int(5_000);
    const open = tag(rng.pick([2, 60, 999]), 3);
    const bytes: number[] = [];
    for (let i = 0; i < depth; i++) bytes.push(...open);
    return new Uint8Array(bytes);
  },
  wrongWireType: (rng) => {
    // A known field with the wrong wire type.
    const field = rng.pick([1, 4, 5, 6, 7, 8, 9, 10, 11]);
    const wireType = rng.pick([0, 1, 2, 5]);
    return new Uint8Array([...tag(field, wireType), ...Array.from({ length: 1 + rng.int(10) }, () => rng.int(256))]);
  },
  spliced: (rng) => {
    // Two valid frames back to back: valid protobuf (fields merge), must still validate.
    const a = rng.pick(VALID);
    const b = rng.pick(VALID);
    return new Uint8Array([...a, ...b]);
  },
  nestedMutation: (rng) => {
    // A valid frame whose inner message bytes get random garbage spliced in.
    const frame = rng.pick(VALID);
    const at = rng.int(frame.length + 1);
    const junk = Array.from({ length: 1 + rng.int(6) }, () => rng.int(256));
    return new Uint8Array([...frame.slice(0, at), ...junk, ...frame.slice(at)]);
  },
};

const ERROR_CODES: readonly DecodeErrorCode[] = ['malformed_frame', 'unknown_frame', 'frame_too_large', 'validation'];

/** A cheap assertion for the hot loop (vitest's expect costs more than the decoding). */
function assert(condition: boolean, label: string, what: string, bytes: Uint8Array): void {
  if (!condition) throw new Error(`${label}: ${what} for ${Buffer.from(bytes.slice(0, 64)).toString('hex')}`);
}

function check(bytes: Uint8Array, label: string): string {
  let result: ReturnType<typeof decodeClientFrame>;
  try {
    result = decodeClientFrame(bytes);
  } catch (error) {
    throw new Error(`${label}: decodeClientFrame threw ${String(error)} on ${Buffer.from(bytes.slice(0, 64)).toString('hex')}`);
  }
  if (result.ok) {
    // Whatever decodes is a valid frame, and survives another round trip unchanged.
    assert(validateClientFrame(result.frame).ok, label, 'a decoded frame fails validation', bytes);
    expect(decodeClientFrame(encodeClientFrame(result.frame)), label).toEqual(result);
    return 'ok';
  }
  const { error } = result;
  assert(ERROR_CODES.includes(error.code), label, `unexpected code ${String(error.code)}`, bytes);
  assert(typeof error.message === 'string' && error.message.length > 0 && error.message.length < 400, label, 'bad message', bytes);
  assert(Number.isInteger(error.requestId) && error.requestId >= 0 && error.requestId <= 0xffff_ffff, label, 'bad request id', bytes);
  assert(error.code !== 'validation' || typeof error.field === 'string', label, 'validation error without field', bytes);
  return error.code;
}

describe('decodeClientFrame under fuzzing', () => {
  it(`answers ${CASES} hostile frames with a valid frame or a typed error, never a throw`, () => {
    const rng = random(SEED);
    const names = Object.keys(generators);
    const outcomes = new Map<string, number>();
    const started = performance.now();
    for (let i = 0; i < CASES; i++) {
      const name = names[i % names.length]!;
      const outcome = check(generators[name]!(rng), `case ${i} (${name}, seed ${SEED})`);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    // Oversized frames: allocated separately (fewer: each is > 128 KiB).
    for (let i = 0; i < 20; i++) {
      const size = MAX_FRAME_BYTES + 1 + rng.int(MAX_FRAME_BYTES);
      const outcome = check(Uint8Array.from({ length: size }, () => rng.int(256)), `oversized ${i}`);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    // The generators reach every kind of answer (a fuzz that only ever hits one path proves little).
    for (const outcome of ['ok', ...ERROR_CODES]) expect(outcomes.get(outcome) ?? 0, `${outcome}: ${JSON.stringify([...outcomes])}`).toBeGreaterThan(0);
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('decodeServerFrame (the SDK side) never throws on the same kinds of input', () => {
    const rng = random(SEED + 1);
    const names = Object.keys(generators);
    for (let i = 0; i < 3_000; i++) {
      const bytes = i % 4 === 0 ? rng.pick(VALID_SERVER).slice(0, rng.int(64)) : generators[names[i % names.length]!]!(rng);
      const result = decodeServerFrame(bytes);
      expect(typeof result.ok).toBe('boolean');
    }
  });
});
