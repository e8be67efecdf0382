/**
 * Reads one varint field out of encoded protobuf bytes by its path of field numbers, without
 * decoding the message: the gateway uses it to find a MessageSent's created_at_ms inside an
 * already-encoded Event frame (a few hundred nanoseconds instead of a full decode per event).
 *
 * `path` lists field numbers from the outer message inwards; every field but the last must be a
 * length-delimited (embedded message) field, the last a varint. Returns undefined when a field is
 * absent, has another wire type, the bytes are malformed, or the value is not a safe non-negative
 * integer. The first occurrence of each field is used.
 */
export function readVarintAtPath(bytes: Uint8Array, path: readonly number[]): number | undefined {
  const found = fieldAtPath(bytes, path);
  if (found === undefined || found.wire !== 0) return undefined;
  const value = readVarint(bytes, found.pos, found.end);
  return value !== undefined && Number.isSafeInteger(value) ? value : undefined;
}

/**
 * Whether encoded protobuf bytes hold the field at `path` (every field but the last an embedded
 * message; the last of any wire type): the gateway asks it which case of an Event frame's payload
 * an event is without decoding the frame.
 */
export function hasFieldAtPath(bytes: Uint8Array, path: readonly number[]): boolean {
  return fieldAtPath(bytes, path) !== undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The string field at `path` of encoded protobuf bytes (every field but the last an embedded
 * message, the last length-delimited), without decoding the message: the load generator reads a
 * MessageSent's sender and content with it. Undefined when absent (proto3 leaves an empty string
 * out), of another wire type, malformed or not UTF-8.
 */
export function readStringAtPath(bytes: Uint8Array, path: readonly number[]): string | undefined {
  const found = fieldAtPath(bytes, path);
  if (found === undefined || found.wire !== 2) return undefined;
  const len = readVarint(bytes, found.pos, found.end);
  if (len === undefined) return undefined;
  let pos = found.pos;
  while (bytes[pos]! & 0x80) pos++;
  pos++;
  if (pos + len > found.end) return undefined;
  try {
    return utf8.decode(bytes.subarray(pos, pos + len));
  } catch {
    return undefined;
  }
}

/** Where the first occurrence of the field at `path` starts (after its tag), its wire type, and where its parent ends. */
function fieldAtPath(bytes: Uint8Array, path: readonly number[]): { wire: number; pos: number; end: number } | undefined {
  const depth = path.length;
  if (depth === 0) return undefined;
  let pos = 0;
  let end = bytes.length;
  let level = 0;
  while (pos < end) {
    // tag (field numbers here are small: a tag over 32 bits is malformed for our purposes)
    let tag = 0;
    let shift = 0;
    let b: number;
    do {
      if (pos >= end || shift > 28) return undefined;
      b = bytes[pos++]!;
      tag |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    tag >>>= 0;
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === path[level]) {
      if (level === depth - 1) return { wire, pos, end };
      if (wire !== 2) return undefined;
    }
    switch (wire) {
      case 0: {
        while (pos < end && bytes[pos]! & 0x80) pos++;
        if (pos >= end) return undefined;
        pos++;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = readVarint(bytes, pos, end);
        if (len === undefined) return undefined;
        while (bytes[pos]! & 0x80) pos++;
        pos++;
        if (pos + len > end) return undefined;
        if (field === path[level]) {
          end = pos + len;
          level++;
        } else {
          pos += len;
        }
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        return undefined;
    }
  }
  return undefined;
}

/** The varint at `pos` (up to 10 bytes; values past 2^53 lose precision and are refused by the caller). */
function readVarint(bytes: Uint8Array, pos: number, end: number): number | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++, pos++) {
    if (pos >= end) return undefined;
    const b = bytes[pos]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return value;
    scale *= 128;
  }
  return undefined;
}
