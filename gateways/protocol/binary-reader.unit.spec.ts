import { create, fromBinary, ScalarType, toBinary, type DescField, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, StructSchema, TimestampSchema } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { random } from '../../domain/testing/random.js';
import { compileDecoder, type PlainDecoded, type PlainDecoder } from './binary-reader.js';
import { encodeClientFrame, encodeServerFrame } from './codec.js';
import { eventFrame, toEventFrame } from './event-frames.js';
import { ClientFrameSchema, ServerFrameSchema } from './gen/chat/v1/frames_pb.js';
import { fromMessage } from './plain.js';
import { CLIENT_SAMPLES, DOMAIN_EVENTS, SERVER_SAMPLES, stored } from './testing/samples.js';

/**
 * The compiled decoder against what it replaces, fromMessage(fromBinary(...)), on every sample
 * frame, thousands of random valid frames and thousands of hostile inputs: both must agree on
 * ok / fail, and when ok on the value (property order included), and on the unknown top-level
 * field numbers; when a 64-bit value is beyond 2^53-1, on the path reported.
 */

type Rng = ReturnType<typeof random>;
type Outcome = 'ok' | 'malformed' | 'unsafe_integer';

/** What protobuf-es gives for the same bytes: the reference. */
function reference(desc: DescMessage, bytes: Uint8Array) {
  let message: MessageShape<DescMessage>;
  try {
    message = fromBinary(desc, bytes, { readUnknownFields: true });
  } catch {
    return { outcome: 'malformed' as const };
  }
  const unknownFields = (message.$unknown ?? []).map((field) => field.no);
  const plain = fromMessage(message);
  return plain.ok ? { outcome: 'ok' as const, value: plain.value, unknownFields } : { outcome: 'unsafe_integer' as const, path: plain.path, unknownFields };
}

/** A serialization that tells property order, absent from undefined, and lone surrogates apart. */
const shape = (value: unknown) => JSON.stringify(value, (_key, v: unknown) => (v === undefined ? '<undefined>' : v));
const hex = (bytes: Uint8Array) => Buffer.from(bytes.slice(0, 96)).toString('hex') + (bytes.length > 96 ? '...' : '');

/** Decodes with both and fails the test on any disagreement; returns the shared outcome. */
function agree(decode: PlainDecoder<unknown>, desc: DescMessage, bytes: Uint8Array, label: string): Outcome {
  const expected = reference(desc, bytes);
  let actual: PlainDecoded<unknown>;
  try {
    actual = decode(bytes);
  } catch (error) {
    throw new Error(`${label}: the decoder threw ${String(error)} on ${hex(bytes)}`);
  }
  const outcome: Outcome = actual.ok ? 'ok' : actual.error;
  const where = `${label} on ${hex(bytes)}`;
  if (outcome !== expected.outcome) expect.fail(`${where}: decoder says ${outcome} (${JSON.stringify(actual)}), protobuf-es ${expected.outcome}`);
  if (actual.ok && expected.outcome === 'ok') {
    // (a string comparison first: vitest's deep equality on every case would take the test's time)
    if (shape(actual.value) !== shape(expected.value)) {
      expect(actual.value, where).toEqual(expected.value);
      expect(shape(actual.value), `${where}: property order`).toBe(shape(expected.value));
    }
    expect(actual.unknownFields, where).toEqual(expected.unknownFields);
  }
  if (!actual.ok && actual.error === 'unsafe_integer' && expected.outcome === 'unsafe_integer') {
    expect(actual.path, where).toEqual(expected.path);
    expect(actual.unknownFields, where).toEqual(expected.unknownFields);
  }
  return outcome;
}

const decodeClient = compileDecoder(ClientFrameSchema) as PlainDecoder<unknown>;
const decodeServer = compileDecoder(ServerFrameSchema) as PlainDecoder<unknown>;
const BOTH = [
  { name: 'client', desc: ClientFrameSchema, decode: decodeClient },
  { name: 'server', desc: ServerFrameSchema, decode: decodeServer },
] as const;

const CLIENT_BYTES = Object.values(CLIENT_SAMPLES)
  .flat()
  .map((frame) => encodeClientFrame(frame));
const SERVER_BYTES = [
  ...Object.values(SERVER_SAMPLES)
    .flat()
    .map((frame) => encodeServerFrame(frame)),
  ...DOMAIN_EVENTS.map((event, i) => encodeServerFrame(eventFrame(toEventFrame(stored(event, i + 1), { previousVersion: i })))),
];
const VALID = [...CLIENT_BYTES, ...SERVER_BYTES];

/* ---- random valid frames, from the descriptors ---- */

const TEXTS = [
  '',
  'a',
  'héllo wörld',
  '👍🏽 emoji',
  '\u0000nul',
  '\ud800 lone high',
  'lone low \udc00',
  '\ufeffBOM first',
  'x'.repeat(16),
  'y'.repeat(17),
  `${'z'.repeat(15)}é`,
  'v'.repeat(64),
  'ѐ'.repeat(70),
  'w'.repeat(300),
];
const UINT32 = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
const ENUMS = [0, 1, 2, 3, 4, 42, -1, -(2 ** 31), 2 ** 31 - 1];
const SAFE_LONGS = [0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 1_741_064_767_890n, 2n ** 53n - 1n];
const UNSAFE_UINT64 = [2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
const UNSAFE_INT64 = [2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)];
const NEGATIVE_SAFE_INT64 = [-1n, -(2n ** 53n - 1n), -1_741_064_767_890n];

function randomScalar(scalar: ScalarType, rng: Rng): unknown {
  switch (scalar) {
    case ScalarType.STRING:
      return rng.pick(TEXTS);
    case ScalarType.BOOL:
      return rng.int(2) === 0;
    case ScalarType.UINT32:
      return rng.pick(UINT32);
    case ScalarType.UINT64:
      return rng.int(12) === 0 ? rng.pick(UNSAFE_UINT64) : rng.pick(SAFE_LONGS);
    case ScalarType.INT64:
      return rng.int(12) === 0 ? rng.pick(UNSAFE_INT64) : rng.pick([...SAFE_LONGS, ...NEGATIVE_SAFE_INT64]);
    default:
      throw new Error(`no generator for ${ScalarType[scalar]}`);
  }
}

function randomValue(field: DescField, rng: Rng, depth: number): unknown {
  switch (field.fieldKind) {
    case 'scalar':
      return randomScalar(field.scalar, rng);
    case 'enum':
      return rng.pick(ENUMS);
    case 'message':
      return randomInit(field.message, rng, depth + 1);
    case 'list':
      return Array.from({ length: rng.pick([0, 0, 1, 2, 3]) }, () =>
        field.listKind === 'message' ? randomInit(field.message, rng, depth + 1) : field.listKind === 'scalar' ? randomScalar(field.scalar, rng) : 0,
      );
    case 'map':
      throw new Error('no maps in the protocol');
  }
}

/** A random init object for `desc`: every field absent, default or random; a random oneof case or none. */
function randomInit(desc: DescMessage, rng: Rng, depth = 0): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const member of desc.members) {
    if (member.kind === 'oneof') {
      if (rng.int(8) === 0) continue;
      const field = rng.pick(member.fields);
      init[member.localName] = { case: field.localName, value: randomValue(field, rng, depth) };
      continue;
    }
    if (rng.int(4) === 0) continue;
    init[member.localName] = randomValue(member, rng, depth);
  }
  return init;
}

const randomFrame = (desc: DescMessage, rng: Rng) => toBinary(desc, create(desc, randomInit(desc, rng)));

/* ---- hostile input ---- */

/** A varint, padded with redundant continuation bytes (still valid up to ten bytes, not beyond). */
function varint(value: bigint, padding = 0): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  for (let i = 0; i < padding; i++) {
    out[out.length - 1]! |= 0x80;
    out.push(0);
  }
  return out;
}
const tag = (field: number, wireType: number, padding = 0) => varint(BigInt(field) * 8n + BigInt(wireType), padding);

const FIELD_NUMBERS = [1, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13, 14, 15, 16, 17, 18, 40, 99, 2 ** 29 - 1];
const VARINTS = [0n, 1n, 127n, 128n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, -1n];
const BAD_UTF8 = [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xef, 0xbb, 0xbf, 0x61]];

/**
 * A random message in the protocol's field numbers with any wire type: mostly well-formed (so it
 * goes deep), with wire types that do not fit the field, nested messages, strings (some not UTF-8),
 * groups (some not closed right), over-long varints, lengths off by one.
 */
function hostileMessage(rng: Rng, depth: number): number[] {
  const out: number[] = [];
  for (let n = rng.int(depth === 0 ? 6 : 4); n > 0; n--) {
    const field = rng.pick(FIELD_NUMBERS);
    const wireType = rng.int(12) === 0 ? rng.int(8) : rng.pick([0, 0, 1, 2, 2, 2, 2, 3, 5]);
    out.push(...tag(field, wireType, rng.int(10) === 0 ? rng.int(6) : 0));
    switch (wireType) {
      case 0:
        out.push(...varint(rng.pick(VARINTS), rng.int(8) === 0 ? rng.int(11) : 0));
        break;
      case 1:
        out.push(...Array.from({ length: rng.int(10) === 0 ? rng.int(8) : 8 }, () => rng.int(256)));
        break;
      case 5:
        out.push(...Array.from({ length: rng.int(10) === 0 ? rng.int(4) : 4 }, () => rng.int(256)));
        break;
      case 2: {
        const kind = rng.int(4);
        const payload =
          kind === 0 && depth < 4
            ? hostileMessage(rng, depth + 1)
            : kind === 1
              ? [...new TextEncoder().encode(rng.pick(TEXTS))]
              : kind === 2
                ? rng.pick(BAD_UTF8)
                : Array.from({ length: rng.int(12) }, () => rng.int(256));
        const length = payload.length + (rng.int(10) === 0 ? rng.pick([-1, 1, 5]) : 0);
        out.push(...varint(BigInt(Math.max(0, length))), ...payload);
        break;
      }
      case 3:
        if (depth < 4) out.push(...hostileMessage(rng, depth + 1));
        out.push(...tag(rng.int(6) === 0 ? rng.pick(FIELD_NUMBERS) : field, 4));
        break;
      default:
        break;
    }
  }
  return out;
}

/** Nested groups `depth` deep around nothing, as an unknown field. */
function nestedGroups(field: number, depth: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < depth; i++) out.push(...tag(field, 3));
  for (let i = 0; i < depth; i++) out.push(...tag(field, 4));
  return out;
}

const corruptions: Record<string, (rng: Rng) => Uint8Array> = {
  randomBytes: (rng) => Uint8Array.from({ length: rng.int(200) }, () => rng.int(256)),
  bitFlips: (rng) => {
    const bytes = rng.pick(VALID).slice();
    for (let i = 1 + rng.int(4); i > 0; i--) bytes[rng.int(bytes.length)]! ^= 1 << rng.int(8);
    return bytes;
  },
  hostile: (rng) => new Uint8Array(hostileMessage(rng, 0)),
  hostileInsideValid: (rng) => {
    const bytes = rng.pick(VALID);
    const at = rng.int(bytes.length + 1);
    return new Uint8Array([...bytes.slice(0, at), ...hostileMessage(rng, 1), ...bytes.slice(at)]);
  },
  unknownAppended: (rng) => new Uint8Array([...rng.pick(VALID), ...hostileMessage(rng, 0)]),
  duplicated: (rng) => {
    // Two frames back to back: scalars last-one-wins, same oneof case merges, another case replaces.
    const a = rng.pick(VALID);
    const b = rng.int(2) === 0 ? a : rng.pick(VALID);
    return new Uint8Array([...a, ...b, ...(rng.int(3) === 0 ? rng.pick(VALID) : [])]);
  },
  groups: (rng) => {
    const field = rng.pick([2, 3, 40, 99]);
    const depth = rng.pick([1, 2, 50, 97, 98, 99, 100, 101]);
    const inner = nestedGroups(field, depth);
    const prefix = rng.int(2) === 0 ? [] : [0x08, rng.int(128)];
    // at the top, or inside a body (one message deeper: one group less allowed)
    return rng.int(2) === 0 ? new Uint8Array([...prefix, ...inner]) : new Uint8Array([...prefix, ...tag(5, 2), ...varint(BigInt(inner.length)), ...inner]);
  },
  wrongWireTypeInBody: (rng) => {
    // A body whose fields carry wire types that do not fit: protobuf-es reads by the field's type.
    const inner = [...tag(rng.int(7) + 1, rng.pick([0, 1, 2, 3, 4, 5])), ...Array.from({ length: rng.int(12) }, () => rng.int(256))];
    return new Uint8Array([0x08, 1, ...tag(rng.pick([4, 5, 6, 7, 8, 9, 10, 11, 12, 13]), rng.pick([0, 2, 2, 3, 4])), ...varint(BigInt(inner.length)), ...inner]);
  },
};

describe('compileDecoder', () => {
  it('decodes every sample client and server frame and domain event as fromBinary + fromMessage do', () => {
    for (const [i, bytes] of CLIENT_BYTES.entries()) expect(agree(decodeClient, ClientFrameSchema, bytes, `client sample ${i}`)).toBe('ok');
    for (const [i, bytes] of SERVER_BYTES.entries()) expect(agree(decodeServer, ServerFrameSchema, bytes, `server sample ${i}`)).toBe('ok');
  });

  it('agrees on 6,000 random frames: texts (non-ASCII, lone surrogates, BOM), big and unsafe 64-bit values, absent and empty fields, lists', () => {
    const rng = random(0x0b1e_c7ed);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 6_000; i++) {
      const { name, desc, decode } = BOTH[i % 2]!;
      const outcome = agree(decode, desc, randomFrame(desc, rng), `random ${name} frame ${i}`);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    expect(outcomes.get('ok') ?? 0, JSON.stringify([...outcomes])).toBeGreaterThan(3_000);
    expect(outcomes.get('unsafe_integer') ?? 0, JSON.stringify([...outcomes])).toBeGreaterThan(100);
  });

  it('agrees on every truncation of every sample frame', () => {
    let cases = 0;
    for (const { name, desc, decode } of BOTH) {
      for (const [i, bytes] of (name === 'client' ? CLIENT_BYTES : SERVER_BYTES).entries()) {
        for (let length = 0; length < bytes.length; length++, cases++) agree(decode, desc, bytes.subarray(0, length), `${name} sample ${i} cut at ${length}`);
      }
    }
    expect(cases).toBeGreaterThan(2_000);
  });

  it('agrees on 12,000 corrupted inputs: random bytes, bit flips, unknown fields and groups, wrong wire types, duplicated fields', () => {
    const rng = random(0xbad_f00d);
    const names = Object.keys(corruptions);
    const outcomes = new Map<string, Map<Outcome, number>>();
    for (let i = 0; i < 12_000; i++) {
      const name = names[i % names.length]!;
      const bytes = corruptions[name]!(rng);
      for (const { desc, decode } of BOTH) {
        const outcome = agree(decode, desc, bytes, `${name} case ${i}`);
        const counts = outcomes.get(name) ?? new Map<Outcome, number>();
        counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
        outcomes.set(name, counts);
      }
    }
    // Every kind of corruption reaches both answers (a fuzz that only ever fails proves little).
    for (const name of names) {
      const counts = outcomes.get(name)!;
      expect(counts.get('ok') ?? 0, `${name}: ${JSON.stringify([...counts])}`).toBeGreaterThan(0);
      expect(counts.get('malformed') ?? 0, `${name}: ${JSON.stringify([...counts])}`).toBeGreaterThan(0);
    }
  });

  it('stops skipping nested groups where protobuf-es does (its recursion limit, one less per message level)', () => {
    const top = (depth: number) => new Uint8Array(nestedGroups(99, depth));
    expect(agree(decodeClient, ClientFrameSchema, top(99), 'top 99')).toBe('ok');
    expect(agree(decodeClient, ClientFrameSchema, top(100), 'top 100')).toBe('malformed');
    const inBody = (depth: number) => {
      const inner = nestedGroups(99, depth);
      return new Uint8Array([...tag(5, 2), ...varint(BigInt(inner.length)), ...inner]);
    };
    expect(agree(decodeClient, ClientFrameSchema, inBody(98), 'body 98')).toBe('ok');
    expect(agree(decodeClient, ClientFrameSchema, inBody(99), 'body 99')).toBe('malformed');
  });

  it('reads a nested message whose last field runs past its declared length, as protobuf-es does', () => {
    // send_message { conversation_id: "abcd" } declared 2 bytes long: the string ends past it.
    const bytes = new Uint8Array([...tag(5, 2), 2, ...tag(1, 2), 4, ...new TextEncoder().encode('abcd'), 0x08, 9]);
    expect(agree(decodeClient, ClientFrameSchema, bytes, 'overrun')).toBe('ok');
    expect(decodeClient(bytes)).toMatchObject({ ok: true, value: { requestId: 9, body: { case: 'sendMessage', value: { conversationId: 'abcd' } } } });
  });

  it('reports the first unsafe 64-bit value in protobuf-es property order, as fromMessage does', () => {
    // media (field 5) before created_at_ms (field 7) on the wire, but created_at_ms is a property of
    // the zero message while media is added when read: fromMessage finds created_at_ms first.
    const frame = create(ServerFrameSchema, {
      body: {
        case: 'event',
        value: {
          payload: {
            case: 'messageSent',
            value: { media: { mediaId: 'm', sizeBytes: 2n ** 60n }, createdAtMs: 2n ** 62n },
          },
        },
      },
    });
    const bytes = toBinary(ServerFrameSchema, frame);
    expect(agree(decodeServer, ServerFrameSchema, bytes, 'two unsafe')).toBe('unsafe_integer');
    expect(decodeServer(bytes)).toMatchObject({ ok: false, error: 'unsafe_integer', path: ['body', 'value', 'payload', 'value', 'createdAtMs'] });
    // an unsafe value replaced by a later safe one is no error
    const later = toBinary(ServerFrameSchema, create(ServerFrameSchema, { body: { case: 'event', value: { version: 5n } } }));
    const replaced = new Uint8Array([...toBinary(ServerFrameSchema, create(ServerFrameSchema, { body: { case: 'event', value: { version: 2n ** 63n } } })), ...later]);
    expect(agree(decodeServer, ServerFrameSchema, replaced, 'replaced')).toBe('ok');
  });

  it('gives every frame its own objects (zero values are not shared between frames)', () => {
    const a = decodeClient(new Uint8Array([0x08, 1]));
    const b = decodeClient(new Uint8Array([0x08, 1]));
    if (!a.ok || !b.ok) throw new Error('decoding failed');
    expect(a.value).not.toBe(b.value);
    expect((a.value as { body: unknown }).body).not.toBe((b.value as { body: unknown }).body);
  });

  it('refuses, when it is built, field kinds the protocol does not use', () => {
    expect(() => compileDecoder(StructSchema)).toThrow(/map fields/);
    expect(() => compileDecoder(TimestampSchema)).toThrow(/INT32/);
    expect(() => compileDecoder(FileDescriptorProtoSchema)).toThrow(/proto3/);
  });
});
