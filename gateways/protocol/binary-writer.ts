import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';

/**
 * An encoder of plain frames (plain.ts) built once per message type from its descriptor: it
 * writes what `toBinary(desc, toMessage(desc, plain))` writes, byte for byte (fields in number
 * order, proto3 defaults left out, oneof cases and `optional` fields written when set), without
 * building a message and reflecting over it for every frame: about a tenth of the time
 * (BENCHMARKS.md). Every frame of the server goes through it, once per event in the delivery
 * worker and once per reply in the gateway.
 *
 * It covers the field kinds the protocol uses (string, bool, enum, 32- and 64-bit unsigned and
 * 64-bit signed integers, messages, oneofs, repeated strings and messages). A descriptor with
 * anything else is refused when the encoder is built, never at run time; binary-writer.unit.spec
 * compares it with toBinary on every frame kind.
 */
export type PlainEncoder = (plain: object) => Uint8Array;

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
/** Presence of a field without `optional` in proto3: left out when it holds its default. */
const IMPLICIT = 2;

class Writer {
  buf = Buffer.allocUnsafe(1024);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** A non-negative integer up to 2^53 as a varint. */
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    while (value > 0x7f) {
      buf[pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buf[pos++] = value;
    this.pos = pos;
  }

  /** A negative 32- or 64-bit integer: ten bytes of two's complement. */
  negative(value: number): void {
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  tag(fieldNo: number, wireType: number): void {
    this.varint(fieldNo * 8 + wireType);
  }

  string(value: string): void {
    const length = Buffer.byteLength(value, 'utf8');
    this.varint(length);
    this.ensure(length);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  /** Starts a length-delimited part, leaving one byte for its length; returns where it starts. */
  fork(): number {
    this.ensure(1);
    this.pos += 1;
    return this.pos;
  }

  /** Writes the length of the part started at `start`, moving the part when the length needs more than a byte. */
  join(start: number): void {
    const length = this.pos - start;
    if (length < 0x80) {
      this.buf[start - 1] = length;
      return;
    }
    let extra = 0;
    for (let n = length; n > 0x7f; n = Math.floor(n / 0x80)) extra++;
    this.ensure(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    const end = this.pos + extra;
    this.pos = start - 1;
    this.varint(length);
    this.pos = end;
  }

  finish(): Uint8Array {
    return new Uint8Array(this.buf.subarray(0, this.pos));
  }
}

/** Writes one field's value (its tag included), or nothing when the value is absent or, for a plain proto3 field, the default. */
type ValueWriter = (w: Writer, value: unknown) => void;
type MessageWriter = (w: Writer, plain: Record<string, unknown>) => void;

function integer(value: unknown, path: string, min: number, max: number): number {
  if (typeof value === 'bigint') value = Number(value);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`${path}: expected a safe integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

/** Writes one scalar value (its tag included). */
function scalarWriter(scalar: ScalarType, fieldNo: number, path: string): (w: Writer, value: unknown) => void {
  switch (scalar) {
    case ScalarType.STRING:
      return (w, value) => {
        if (typeof value !== 'string') throw new TypeError(`${path}: expected a string`);
        w.tag(fieldNo, WIRE_LENGTH_DELIMITED);
        w.string(value);
      };
    case ScalarType.BOOL:
      return (w, value) => {
        w.tag(fieldNo, WIRE_VARINT);
        w.varint(value ? 1 : 0);
      };
    case ScalarType.UINT32:
      return (w, value) => {
        w.tag(fieldNo, WIRE_VARINT);
        w.varint(integer(value, path, 0, 0xffffffff));
      };
    case ScalarType.UINT64:
      return (w, value) => {
        w.tag(fieldNo, WIRE_VARINT);
        w.varint(integer(value, path, 0, Number.MAX_SAFE_INTEGER));
      };
    case ScalarType.INT32:
    case ScalarType.INT64: {
      const [min, max] = scalar === ScalarType.INT32 ? [-0x80000000, 0x7fffffff] : [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
      return (w, value) => {
        const n = integer(value, path, min, max);
        w.tag(fieldNo, WIRE_VARINT);
        if (n < 0) w.negative(n);
        else w.varint(n);
      };
    }
    default:
      throw new TypeError(`${path}: scalar type ${ScalarType[scalar]} is not used by the protocol`);
  }
}

const isDefault = (value: unknown) => value === undefined || value === '' || value === 0 || value === false;

function valueWriter(field: DescField, path: string, messageWriterOf: (desc: DescMessage) => MessageWriter): ValueWriter {
  const no = field.number;
  switch (field.fieldKind) {
    case 'scalar':
    case 'enum': {
      const write = scalarWriter(field.fieldKind === 'enum' ? ScalarType.INT32 : field.scalar, no, path);
      const implicit = field.presence === IMPLICIT && field.oneof === undefined;
      return implicit
        ? (w, value) => {
            if (!isDefault(value)) write(w, value);
          }
        : (w, value) => {
            if (value !== undefined) write(w, value);
          };
    }
    case 'message': {
      const inner = field.message;
      let write: MessageWriter | undefined; // looked up on first use: the type may still be being built
      return (w, value) => {
        if (value === undefined) return;
        w.tag(no, WIRE_LENGTH_DELIMITED);
        const start = w.fork();
        (write ??= messageWriterOf(inner))(w, value as Record<string, unknown>);
        w.join(start);
      };
    }
    case 'list': {
      if (field.listKind === 'message') {
        const inner = field.message;
        let write: MessageWriter | undefined;
        return (w, values) => {
          if (values === undefined) return;
          if (!Array.isArray(values)) throw new TypeError(`${path}: expected an array`);
          write ??= messageWriterOf(inner);
          for (const value of values) {
            w.tag(no, WIRE_LENGTH_DELIMITED);
            const start = w.fork();
            write(w, value as Record<string, unknown>);
            w.join(start);
          }
        };
      }
      if (field.listKind === 'scalar' && field.scalar === ScalarType.STRING) {
        const write = scalarWriter(ScalarType.STRING, no, path);
        return (w, values) => {
          if (values === undefined) return;
          if (!Array.isArray(values)) throw new TypeError(`${path}: expected an array`);
          for (const value of values) write(w, value);
        };
      }
      throw new TypeError(`${path}: repeated ${field.listKind} fields other than strings are not used by the protocol`);
    }
    case 'map':
      throw new TypeError(`${path}: map fields are not used by the protocol`);
  }
}

/** Builds the encoder of `desc` (and of every message type it holds). */
export function compileEncoder(desc: DescMessage): PlainEncoder {
  const writers = new Map<string, MessageWriter>();
  const messageWriterOf = (d: DescMessage): MessageWriter => {
    const known = writers.get(d.typeName);
    if (known !== undefined) return known;
    // Registered before its fields are built, so a message type that holds itself works.
    const fields: MessageWriter[] = [];
    const write: MessageWriter = (w, plain) => {
      for (const f of fields) f(w, plain);
    };
    writers.set(d.typeName, write);
    for (const field of [...d.fields].sort((a, b) => a.number - b.number)) {
      const key = field.localName;
      const writeValue = valueWriter(field, `${d.typeName}.${key}`, messageWriterOf);
      if (field.oneof === undefined) {
        fields.push((w, plain) => writeValue(w, plain[key]));
      } else {
        // A oneof member is read from { case, value } under the oneof's own name.
        const group = field.oneof.localName;
        fields.push((w, plain) => {
          const selected = plain[group] as { case?: string; value?: unknown } | undefined;
          if (selected !== undefined && selected.case === key) writeValue(w, selected.value);
        });
      }
    }
    return write;
  };
  const write = messageWriterOf(desc);
  const w = new Writer();
  return (plain) => {
    w.reset();
    write(w, plain as Record<string, unknown>);
    return w.finish();
  };
}
