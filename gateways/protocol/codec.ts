import type { MessageShape } from '@bufbuild/protobuf';
import { compileDecoder, type PlainDecoded } from './binary-reader.js';
import { compileEncoder } from './binary-writer.js';
import { ClientFrameSchema as PbClientFrame, ServerFrameSchema as PbServerFrame } from './gen/chat/v1/frames_pb.js';
import { ClientFrameSchema } from './client-frames.js';
import type { ClientFrame, ServerFrame } from './frames.js';
import { MAX_FRAME_BYTES } from './limits.js';
import type { Plain } from './plain.js';

/**
 * Bytes <-> frames, for both ends: the gateway decodes ClientFrames and encodes ServerFrames, the
 * SDK the other way round. No Node.js imports: the module runs in browsers.
 *
 * Decoding never throws: every input, however broken, gives `{ ok: true, frame }` or
 * `{ ok: false, error }`. Client frames are validated after decoding (ids, sizes, versions,
 * enums), so the gateway acts only on typed, checked values.
 */

export type DecodeErrorCode = 'malformed_frame' | 'unknown_frame' | 'frame_too_large' | 'validation';

export type DecodeError = {
  code: DecodeErrorCode;
  message: string;
  /** The offending field for `validation`, as a path into the frame ("send_message.content"). */
  field?: string;
  /** The frame's request_id when it could be read (reply with it), else 0. */
  requestId: number;
};

export type DecodeResult<F> = { ok: true; frame: F } | { ok: false; error: DecodeError };

const readClientFrame = compileDecoder(PbClientFrame);
const readServerFrame = compileDecoder(PbServerFrame);

/**
 * Decodes and validates one client frame (one WebSocket message; uWebSockets.js hands an
 * ArrayBuffer that is valid only during the callback, which is fine: decoding copies). Never throws.
 */
export function decodeClientFrame(message: Uint8Array | ArrayBuffer): DecodeResult<ClientFrame> {
  const bytes = asBytes(message);
  try {
    if (bytes === undefined) return failure('malformed_frame', 'a frame must be a binary message', 0);
    if (bytes.byteLength > MAX_FRAME_BYTES) {
      return failure('frame_too_large', `frame of ${bytes.byteLength} bytes exceeds the limit of ${MAX_FRAME_BYTES} bytes`, peekRequestId(bytes));
    }
    const decoded = decodeEnvelope(readClientFrame(bytes), bytes);
    if (!decoded.ok) return decoded;
    return validateClientFrame(decoded.frame);
  } catch (error) {
    // Unreachable as far as we know; the promise is "never throws", so keep it for the unknown.
    return failure('malformed_frame', `undecodable frame: ${describeError(error)}`, bytes === undefined ? 0 : peekRequestId(bytes));
  }
}

function asBytes(message: unknown): Uint8Array | undefined {
  if (message instanceof Uint8Array) return message;
  if (message instanceof ArrayBuffer) return new Uint8Array(message);
  return undefined;
}

/**
 * Validates a client frame that is already an object: the part of decodeClientFrame after the
 * bytes are parsed. The SDK may call it before sending, to fail early on a bad request.
 */
export function validateClientFrame(frame: Plain<MessageShape<typeof PbClientFrame>> | ClientFrame): DecodeResult<ClientFrame> {
  const parsed = ClientFrameSchema.safeParse(frame);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const issue = parsed.error.issues[0];
  const field = issue === undefined ? undefined : fieldPath(issue.path, safeCase(frame));
  const message = `${field ?? 'frame'}: ${issue?.message ?? 'invalid'}`;
  return { ok: false, error: { code: 'validation', message, ...(field === undefined ? {} : { field }), requestId: safeRequestId(frame) } };
}

/** Decodes one server frame (for the SDK). Never throws; performs no semantic validation beyond the wire types
 * (events are validated by `fromEventFrame` against the domain schemas). */
export function decodeServerFrame(message: Uint8Array | ArrayBuffer): DecodeResult<ServerFrame> {
  const bytes = asBytes(message);
  try {
    if (bytes === undefined) return failure('malformed_frame', 'a frame must be a binary message', 0);
    const decoded = decodeEnvelope(readServerFrame(bytes), bytes);
    if (!decoded.ok) return decoded;
    const { requestId, body } = decoded.frame;
    if (body.case === undefined) return failure('malformed_frame', 'frame has no body', requestId); // decodeEnvelope saw to it
    return { ok: true, frame: { requestId, body } };
  } catch (error) {
    return failure('malformed_frame', `undecodable frame: ${describeError(error)}`, 0);
  }
}

const writeServerFrame = compileEncoder(PbServerFrame);
const writeClientFrame = compileEncoder(PbClientFrame);

/** Encodes a server frame. Throws only on a caller bug (a non-integer where the protocol has a 64-bit integer). */
export function encodeServerFrame(frame: ServerFrame): Uint8Array {
  return writeServerFrame(frame);
}

/**
 * Encodes a client frame (for the SDK). Does not validate: call validateClientFrame first to
 * catch what the server would refuse, and compare the length with MAX_FRAME_BYTES.
 */
export function encodeClientFrame(frame: ClientFrame): Uint8Array {
  return writeClientFrame(frame);
}

/**
 * Turns a decoded envelope (binary-reader.ts) into a result. An envelope without a known body is
 * an unknown frame when it carries a field in the frame-type ranges (a newer peer's frame), else
 * malformed.
 */
function decodeEnvelope<F extends { requestId: number; body: { case: string | undefined } }>(decoded: PlainDecoded<F>, bytes: Uint8Array): DecodeResult<F> {
  if (!decoded.ok && decoded.error === 'malformed') {
    return failure('malformed_frame', `undecodable frame: ${describeError(decoded.message)}`, peekRequestId(bytes));
  }
  const { requestId, body } = decoded.value;
  if (body.case === undefined) {
    const unknownFrame = decoded.unknownFields.some((no) => no >= FIRST_FRAME_FIELD);
    return unknownFrame
      ? failure('unknown_frame', 'unknown frame type (a newer protocol revision?)', requestId)
      : failure('malformed_frame', 'frame has no body', requestId);
  }
  if (!decoded.ok) {
    const field = fieldPath(decoded.path, body.case);
    return { ok: false, error: { code: 'validation', message: `${field}: exceeds 2^53-1`, field, requestId } };
  }
  return { ok: true, frame: decoded.value };
}

/** Envelope field numbers from here on are frame types (frames.proto, "Field number plan"). */
const FIRST_FRAME_FIELD = 4;

function failure(code: DecodeErrorCode, message: string, requestId: number): { ok: false; error: DecodeError } {
  return { ok: false, error: { code, message, requestId } };
}

/**
 * Reads request_id (field 1, varint) from the start of an undecodable or oversized frame, so the
 * error can still answer the request. Encoders write fields in number order, so it comes first.
 * Returns 0 when the frame does not start with it.
 */
export function peekRequestId(bytes: Uint8Array): number {
  if (!(bytes instanceof Uint8Array) || bytes[0] !== 0x08) return 0;
  let value = 0;
  for (let i = 1, shift = 0; i < bytes.length && i <= 10; i++, shift += 7) {
    const byte = bytes[i]!;
    // uint32 keeps the low 32 bits of the varint.
    if (shift < 32) value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return value % 2 ** 32;
  }
  return 0;
}

function safeCase(frame: unknown): string | undefined {
  const body = typeof frame === 'object' && frame !== null ? (frame as { body?: unknown }).body : undefined;
  const name = typeof body === 'object' && body !== null ? (body as { case?: unknown }).case : undefined;
  return typeof name === 'string' ? name : undefined;
}

function safeRequestId(frame: unknown): number {
  const id = typeof frame === 'object' && frame !== null ? (frame as { requestId?: unknown }).requestId : undefined;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 0xffff_ffff ? id : 0;
}

/**
 * A path into a frame in the proto's own names: ["body", "value", "cursors", 3, "conversationId"]
 * of a hello frame -> "hello.cursors[3].conversation_id".
 */
export function fieldPath(path: readonly PropertyKey[], frameCase?: string): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    if (typeof key === 'number') {
      out += `[${key}]`;
      continue;
    }
    let name = String(key);
    if (i === 0 && name === 'body') {
      // { case, value }: name the frame type instead of "body.value".
      const next = path[1];
      if (next === 'value' || next === 'case') i++;
      name = frameCase ?? 'body';
    }
    out += (out === '' ? '' : '.') + snake(name);
  }
  return out === '' ? 'frame' : out;
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
