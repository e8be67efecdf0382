import { ScalarType, type DescField, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { Plain } from './plain.js';

/**
 * A decoder of plain frames (plain.ts) built once per message type from its descriptor: it gives
 * what `fromMessage(fromBinary(desc, bytes, { readUnknownFields: true }))` gives (proto3 defaults
 * for absent fields, `{ case: undefined }` for an unset oneof, `[]` for an empty list, `optional`
 * fields left out when absent, 64-bit integers as numbers), without building a message and
 * reflecting over it twice for every frame. Every client frame goes through it in the gateway, and
 * every server frame in the SDK and the load generator. No Node.js imports: it runs in browsers.
 *
 * It fails exactly where fromBinary throws, and mirrors protobuf-es's reader where it is lenient:
 * the wire type of a known field is not checked (a string read with wire type 0 still reads a
 * length and bytes), a later scalar replaces an earlier one, a repeated message field merges, a
 * later oneof case replaces an earlier one, a nested message whose last field runs past its
 * declared length is accepted (the outer message goes on from where that field ended), strings
 * are decoded with a fatal UTF-8 decoder (the protocol's strings are `utf8_validation = VERIFY`),
 * and unknown fields are skipped as BinaryReader.skip does (groups included, with its recursion
 * limit). It never throws: a frame that fromBinary refuses gives `{ ok: false, error: 'malformed' }`.
 *
 * It covers the field kinds the protocol uses (string, bool, open enums, uint32, uint64, int64,
 * messages, oneofs of messages, repeated strings and messages, `optional` scalars and messages in
 * proto3). A descriptor with anything else is refused when the decoder is built, never at run
 * time; binary-reader.unit.spec compares it with fromBinary + fromMessage on valid and hostile input.
 */
export type PlainDecoded<T> =
  /** `unknownFields`: the field numbers of the unknown top-level fields, in wire order (a newer peer's frame types). */
  | { ok: true; value: T; unknownFields: readonly number[] }
  /** Where fromBinary throws: truncated input, a bad varint or tag, a mismatched group, invalid UTF-8. */
  | { ok: false; error: 'malformed'; message: string }
  /**
   * A 64-bit integer beyond Number.MAX_SAFE_INTEGER: `path` is the one fromMessage reports (the
   * first in the message's property order). `value` holds the frame with such integers rounded,
   * for its request id and frame type.
   */
  | { ok: false; error: 'unsafe_integer'; path: (string | number)[]; value: T; unknownFields: readonly number[] };

export type PlainDecoder<T> = (bytes: Uint8Array) => PlainDecoded<T>;

const EDITION_PROTO3 = 999;
/** Presence of a field without `optional` in proto3: present with its default when absent on the wire. */
const IMPLICIT = 2;
/** protobuf-es's default recursion limit (makeReadContext), shared by nested messages and skipped groups. */
const RECURSION_LIMIT = 100;
/**
 * A string this short and all ASCII is built by hand: cheaper than a TextDecoder call below about
 * 16 bytes on Node 20 (0.09 against 0.30 µs at 4 bytes), dearer above (0.50 against 0.44 at 24).
 */
const ASCII_FAST_PATH_MAX = 16;

const WIRE_VARINT = 0;
const WIRE_BIT64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_BIT32 = 5;

/** Thrown inside the decoder only; the decoder turns it into a `malformed` result. */
class WireError extends Error {}

const prematureEof = () => new WireError('premature EOF');
const utf8 = new TextDecoder('utf-8', { fatal: true });
const NO_UNKNOWN_FIELDS: readonly number[] = Object.freeze([]);

class Reader {
  pos = 0;
  readonly len: number;
  /** Nesting of messages being read, as protobuf-es's ctx.depth. */
  depth = 0;
  /** A 64-bit integer beyond 2^53-1 was read (maybe replaced later: the result is searched at the end). */
  unsafe = false;
  unknown: number[] | undefined;
  /** The two halves of the last varint64, as varint64read returns them. */
  lo = 0;
  hi = 0;

  readonly buf: Uint8Array;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.len = buf.length;
  }

  /** varint32read: up to ten bytes, the low 32 bits kept. */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= this.len) throw prematureEof();
    let b = buf[pos++]!;
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    let result = b & 0x7f;
    for (let shift = 7; shift < 28; shift += 7) {
      if (pos >= this.len) throw prematureEof();
      b = buf[pos++]!;
      result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result;
      }
    }
    if (pos >= this.len) throw prematureEof();
    b = buf[pos++]!;
    result |= (b & 0x0f) << 28;
    for (let read = 5; b >= 0x80 && read < 10; read++) {
      if (pos >= this.len) throw prematureEof();
      b = buf[pos++]!;
    }
    if (b >= 0x80) throw new WireError('invalid varint');
    this.pos = pos;
    return result >>> 0;
  }

  /** varint64read into lo / hi: up to ten bytes, bits beyond the 64th dropped. */
  varint64(): void {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let b: number;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= this.len) throw prematureEof();
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo;
        this.hi = 0;
        return;
      }
    }
    if (pos >= this.len) throw prematureEof();
    b = buf[pos++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x70) >> 4;
    if (b < 0x80) {
      this.pos = pos;
      this.lo = lo;
      this.hi = hi;
      return;
    }
    for (let shift = 3; shift <= 31; shift += 7) {
      if (pos >= this.len) throw prematureEof();
      b = buf[pos++]!;
      hi |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo;
        this.hi = hi;
        return;
      }
    }
    throw new WireError('invalid varint');
  }

  /** BinaryReader.tag: a uint32 varint of at most five bytes, field number > 0, wire type <= 5. Returns the tag. */
  tag(): number {
    const start = this.pos;
    const tag = this.uint32();
    const read = this.pos - start;
    if (read > 5 || (read === 5 && this.buf[this.pos - 1]! > 0x0f)) throw new WireError('illegal tag: varint overflows uint32');
    if (tag >>> 3 === 0 || (tag & 7) > 5) throw new WireError(`illegal tag: field no ${tag >>> 3} wire type ${tag & 7}`);
    return tag;
  }

  bool(): boolean {
    this.varint64();
    return this.lo !== 0 || this.hi !== 0;
  }

  uint64(): number {
    this.varint64();
    const hi = this.hi >>> 0;
    if (hi > 0x1fffff) this.unsafe = true;
    return hi * 0x1_0000_0000 + (this.lo >>> 0);
  }

  int64(): number {
    this.varint64();
    // (Exact up to 2^53; beyond it rounded as Number(bigint) rounds.)
    const value = (this.hi | 0) * 0x1_0000_0000 + (this.lo >>> 0);
    if (value > Number.MAX_SAFE_INTEGER || value < Number.MIN_SAFE_INTEGER) this.unsafe = true;
    return value;
  }

  int32(): number {
    return this.uint32() | 0;
  }

  string(): string {
    const length = this.uint32();
    const start = this.pos;
    const end = start + length;
    if (end > this.len) throw prematureEof();
    this.pos = end;
    const buf = this.buf;
    if (length <= ASCII_FAST_PATH_MAX) {
      let text = '';
      let i = start;
      for (; i < end; i++) {
        const b = buf[i]!;
        if (b >= 0x80) break;
        text += String.fromCharCode(b);
      }
      if (i === end) return text;
    }
    try {
      return utf8.decode(buf.subarray(start, end));
    } catch {
      throw new WireError('invalid UTF-8');
    }
  }

  /** BinaryReader.skip: steps over one value of an unknown field; `limit` bounds nested groups. */
  skip(wireType: number, fieldNo: number, limit: number): void {
    switch (wireType) {
      case WIRE_VARINT: {
        const buf = this.buf;
        let pos = this.pos;
        // (no ten-byte limit here in protobuf-es either)
        for (;;) {
          if (pos >= this.len) throw prematureEof();
          if (buf[pos++]! < 0x80) break;
        }
        this.pos = pos;
        break;
      }
      case WIRE_BIT64:
        this.pos += 8;
        break;
      case WIRE_BIT32:
        this.pos += 4;
        break;
      case WIRE_LENGTH_DELIMITED: {
        const length = this.uint32(); // (before reading pos: `this.pos += this.uint32()` would add to the old pos)
        this.pos += length;
        break;
      }
      case WIRE_START_GROUP:
        if (limit <= 0) throw new WireError('maximum recursion depth reached');
        for (;;) {
          const tag = this.tag();
          if ((tag & 7) === WIRE_END_GROUP) {
            if (tag >>> 3 !== fieldNo) throw new WireError('invalid end group tag');
            break;
          }
          this.skip(tag & 7, tag >>> 3, limit - 1);
        }
        break;
      default:
        throw new WireError(`cant skip wire type ${wireType}`);
    }
    if (this.pos > this.len) throw prematureEof();
  }
}

type Target = Record<string, unknown>;
/**
 * Reads one occurrence of a known field (its tag already read) into the message being built. As
 * in protobuf-es, the wire type is not looked at: the field's own type says how to read it (the
 * protocol has no packable repeated field, where the wire type would matter).
 */
type FieldReader = (r: Reader, target: Target) => void;

type MessageType = {
  /** The zero message: implicit-presence fields, lists and oneofs, in member order (protobuf-es's property order). */
  create: () => Target;
  /** By field number. */
  fields: (FieldReader | undefined)[];
};

/** readMessage of protobuf-es (length-delimited), reading into `target`. */
function readFields(r: Reader, type: MessageType, target: Target, end: number): void {
  if (++r.depth > RECURSION_LIMIT) throw new WireError(`maximum recursion depth of ${RECURSION_LIMIT} reached`);
  const fields = type.fields;
  while (r.pos < end) {
    const tag = r.tag();
    const fieldNo = tag >>> 3;
    const read = fieldNo < fields.length ? fields[fieldNo] : undefined;
    if (read === undefined) {
      r.skip(tag & 7, fieldNo, RECURSION_LIMIT - r.depth);
      if (r.depth === 1) (r.unknown ??= []).push(fieldNo);
      continue;
    }
    read(r, target);
  }
  r.depth--;
}

/** A nested message: its length, then its fields (merged into `target`). */
function readMessage(r: Reader, type: MessageType, target: Target): Target {
  const length = r.uint32();
  readFields(r, type, target, r.pos + length);
  return target;
}

function scalarReader(scalar: ScalarType, path: string): { read: (r: Reader) => unknown; zero: unknown } {
  switch (scalar) {
    case ScalarType.STRING:
      return { read: (r) => r.string(), zero: '' };
    case ScalarType.BOOL:
      return { read: (r) => r.bool(), zero: false };
    case ScalarType.UINT32:
      return { read: (r) => r.uint32(), zero: 0 };
    case ScalarType.UINT64:
      return { read: (r) => r.uint64(), zero: 0 };
    case ScalarType.INT64:
      return { read: (r) => r.int64(), zero: 0 };
    default:
      throw new TypeError(`${path}: scalar type ${ScalarType[scalar]} is not used by the protocol`);
  }
}

type Member = { reader: FieldReader; zero?: () => unknown };

function fieldMember(field: DescField, path: string, messageTypeOf: (desc: DescMessage) => MessageType): Member {
  const key = field.localName;
  switch (field.fieldKind) {
    case 'scalar':
    case 'enum': {
      if (field.oneof !== undefined) throw new TypeError(`${path}: oneof members other than messages are not used by the protocol`);
      if (field.fieldKind === 'scalar' && field.longAsString) throw new TypeError(`${path}: jstype = JS_STRING is not used by the protocol`);
      if (field.fieldKind === 'scalar' && field.scalar === ScalarType.STRING && !field.utf8Validation) {
        throw new TypeError(`${path}: strings without UTF-8 validation are not used by the protocol`);
      }
      if (field.fieldKind === 'enum' && !field.enum.open) throw new TypeError(`${path}: closed enums are not used by the protocol`);
      const { read, zero } =
        field.fieldKind === 'enum' ? { read: (r: Reader) => r.int32(), zero: field.enum.values[0]!.number } : scalarReader(field.scalar, path);
      const reader: FieldReader = (r, target) => {
        target[key] = read(r);
      };
      return field.presence === IMPLICIT ? { reader, zero: () => zero } : { reader };
    }
    case 'message': {
      if (field.delimitedEncoding) throw new TypeError(`${path}: delimited message encoding is not used by the protocol`);
      const inner = field.message;
      if (inner.typeName.startsWith('google.protobuf.')) throw new TypeError(`${path}: well-known types are not used by the protocol`);
      // (may still be being built when the message type holds itself: it is filled in place)
      const type = messageTypeOf(inner);
      if (field.oneof === undefined) {
        return {
          reader: (r, target) => {
            const existing = target[key] as Target | undefined;
            if (existing !== undefined) readMessage(r, type, existing);
            else target[key] = readMessage(r, type, type.create());
          },
        };
      }
      // A oneof case: the same case again merges into it, another case replaces it.
      const group = field.oneof.localName;
      return {
        reader: (r, target) => {
          const selected = target[group] as { case: string | undefined; value?: Target };
          if (selected.case === key) readMessage(r, type, selected.value!);
          else target[group] = { case: key, value: readMessage(r, type, type.create()) };
        },
      };
    }
    case 'list': {
      const zero = () => [];
      if (field.listKind === 'message') {
        if (field.delimitedEncoding) throw new TypeError(`${path}: delimited message encoding is not used by the protocol`);
        const type = messageTypeOf(field.message);
        return {
          reader: (r, target) => {
            (target[key] as unknown[]).push(readMessage(r, type, type.create()));
          },
          zero,
        };
      }
      if (field.listKind === 'scalar' && field.scalar === ScalarType.STRING) {
        if (!field.utf8Validation) throw new TypeError(`${path}: strings without UTF-8 validation are not used by the protocol`);
        // Strings are never packed: every occurrence is one element, whatever its wire type.
        return {
          reader: (r, target) => {
            (target[key] as unknown[]).push(r.string());
          },
          zero,
        };
      }
      throw new TypeError(`${path}: repeated ${field.listKind} fields other than strings and messages are not used by the protocol`);
    }
    case 'map':
      throw new TypeError(`${path}: map fields are not used by the protocol`);
  }
}

/**
 * The path fromMessage reports: the first 64-bit integer beyond 2^53-1 in property order (the
 * objects are built in protobuf-es's property order for this). Only called when one was read.
 */
function unsafePath(value: unknown, path: (string | number)[]): (string | number)[] | undefined {
  if (typeof value === 'number') return value > Number.MAX_SAFE_INTEGER || value < Number.MIN_SAFE_INTEGER ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unsafePath(value[i], [...path, i]);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value)) {
    const found = unsafePath(v, [...path, key]);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Builds the decoder of `desc` (and of every message type it holds). Throws on a field kind the protocol does not use. */
export function compileDecoder<Desc extends DescMessage>(desc: Desc): PlainDecoder<Plain<MessageShape<Desc>>> {
  const types = new Map<string, MessageType>();
  const messageTypeOf = (d: DescMessage): MessageType => {
    const known = types.get(d.typeName);
    if (known !== undefined) return known;
    if (d.file.edition !== EDITION_PROTO3) throw new TypeError(`${d.typeName}: only proto3 messages are used by the protocol`);
    // Registered before its fields are built, so a message type that holds itself works.
    const fields: (FieldReader | undefined)[] = [];
    const zeros: [string, () => unknown][] = [];
    const type: MessageType = {
      create: () => {
        const target: Target = {};
        for (const [key, zero] of zeros) target[key] = zero();
        return target;
      },
      fields,
    };
    types.set(d.typeName, type);
    for (const member of d.members) {
      if (member.kind === 'oneof') {
        zeros.push([member.localName, () => ({ case: undefined })]);
        for (const field of member.fields) fields[field.number] = fieldMember(field, `${d.typeName}.${field.localName}`, messageTypeOf).reader;
        continue;
      }
      const { reader, zero } = fieldMember(member, `${d.typeName}.${member.localName}`, messageTypeOf);
      fields[member.number] = reader;
      if (zero !== undefined) zeros.push([member.localName, zero]);
    }
    return type;
  };
  // Builds every message type it holds too: a refused field kind shows here, not on first use.
  const root = messageTypeOf(desc);

  return (bytes) => {
    const r = new Reader(bytes);
    let value: Target;
    try {
      value = root.create();
      readFields(r, root, value, r.len);
    } catch (error) {
      return { ok: false, error: 'malformed', message: error instanceof Error ? error.message : String(error) };
    }
    // Built from the descriptor, so it has the plain shape by construction.
    const plain = value as Plain<MessageShape<Desc>>;
    const unknownFields = r.unknown ?? NO_UNKNOWN_FIELDS;
    const path = r.unsafe ? unsafePath(value, []) : undefined;
    return path === undefined ? { ok: true, value: plain, unknownFields } : { ok: false, error: 'unsafe_integer', path, value: plain, unknownFields };
  };
}
