import { create, ScalarType, type DescField, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';

/**
 * Plain frames: the generated protobuf-es shapes without `$typeName` / `$unknown`, with every
 * 64-bit integer as a JavaScript number instead of a bigint. The protocol's 64-bit values
 * (versions, Unix milliseconds) are always safe integers, so numbers lose nothing, and the
 * gateway and the SDK work with the same types the domain uses.
 *
 * `toMessage` turns a plain value into a protobuf-es message (frames are encoded by
 * binary-writer.ts, which is tested against toBinary of this); `fromMessage` turns a decoded
 * message back, refusing (rather than rounding) an integer beyond Number.MAX_SAFE_INTEGER.
 */
export type Plain<T> = T extends bigint
  ? number
  : T extends Uint8Array
    ? T
    : T extends readonly (infer E)[]
      ? Plain<E>[]
      : T extends object
        ? { [K in keyof T as K extends '$typeName' | '$unknown' ? never : K]: Plain<T[K]> }
        : T;

const LONG_SCALARS: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);

/** Builds the message for a plain value. Throws on a non-integer in a 64-bit field (a caller bug). */
export function toMessage<Desc extends DescMessage>(desc: Desc, plain: Plain<MessageShape<Desc>>): MessageShape<Desc> {
  // The init object is built from the descriptor, so it has the message's shape by construction.
  return create(desc, initOf(desc, plain as unknown as Record<string, unknown>) as MessageInitShape<Desc>);
}

function initOf(desc: DescMessage, plain: Record<string, unknown>): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const member of desc.members) {
    const value = plain[member.localName];
    if (value === undefined) continue;
    if (member.kind === 'oneof') {
      const { case: name, value: inner } = value as { case?: string; value?: unknown };
      if (name === undefined) continue;
      const field = member.fields.find((f) => f.localName === name);
      if (field === undefined) throw new TypeError(`${desc.typeName}.${member.localName}: no case "${name}"`);
      init[member.localName] = { case: name, value: fieldInit(field, inner, `${desc.typeName}.${name}`) };
    } else {
      init[member.localName] = fieldInit(member, value, `${desc.typeName}.${member.localName}`);
    }
  }
  return init;
}

function fieldInit(field: DescField, value: unknown, path: string): unknown {
  switch (field.fieldKind) {
    case 'scalar':
      return LONG_SCALARS.has(field.scalar) ? toBigInt(value, path) : value;
    case 'message':
      return initOf(field.message, value as Record<string, unknown>);
    case 'list':
      if (!Array.isArray(value)) throw new TypeError(`${path}: expected an array`);
      if (field.listKind === 'message') return value.map((v) => initOf(field.message, v as Record<string, unknown>));
      if (field.listKind === 'scalar' && LONG_SCALARS.has(field.scalar)) return value.map((v) => toBigInt(v, path));
      return value;
    case 'enum':
      return value;
    case 'map':
      throw new TypeError(`${path}: map fields are not used by the protocol`);
  }
}

function toBigInt(value: unknown, path: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new TypeError(`${path}: expected a safe integer, got ${String(value)}`);
}

export type FromMessageResult<T> = { ok: true; value: Plain<T> } | { ok: false; path: (string | number)[] };

/** Strips protobuf-es bookkeeping and turns 64-bit integers into numbers; never throws. */
export function fromMessage<T>(message: T): FromMessageResult<T> {
  const unsafe: (string | number)[][] = [];
  const value = plainOf(message, [], unsafe) as Plain<T>;
  const first = unsafe[0];
  return first === undefined ? { ok: true, value } : { ok: false, path: first };
}

function plainOf(value: unknown, path: (string | number)[], unsafe: (string | number)[][]): unknown {
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) unsafe.push(path);
    return Number(value);
  }
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((v: unknown, i) => plainOf(v, [...path, i], unsafe));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === '$typeName' || key === '$unknown') continue;
    out[key] = plainOf(v, [...path, key], unsafe);
  }
  return out;
}
