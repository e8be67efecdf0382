/**
 * The node message from a delivery worker to a gateway node (bus.sendToNode): a batch of
 * already-encoded ServerFrames (Event frames), each with the conversation and version it belongs
 * to (the gateway needs them to hold events during a sync) and the users of that node who get it.
 *
 * Binary, little-endian, validated on decode (a malformed message throws EnvelopeError):
 *   u8 magic 0xC7 | u8 format 1 | u32 item count
 *   item: u16 len + UTF-8 conversation id | f64 version | u32 user count
 *         | (u16 len + UTF-8 user id) * count | u32 len + frame bytes
 */
export type DeliveryItem = {
  conversationId: string;
  version: number;
  userIds: string[];
  /** An encoded ServerFrame. */
  frame: Uint8Array;
};

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

const MAGIC = 0xc7;
const FORMAT = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeDeliveries(items: DeliveryItem[]): Uint8Array {
  const parts: { conv: Uint8Array; users: Uint8Array[]; item: DeliveryItem }[] = [];
  let size = 6;
  for (const item of items) {
    const conv = encoder.encode(item.conversationId);
    const users = item.userIds.map((u) => encoder.encode(u));
    if (conv.length > 0xffff || users.some((u) => u.length > 0xffff)) throw new EnvelopeError('id too long');
    size += 2 + conv.length + 8 + 4 + users.reduce((n, u) => n + 2 + u.length, 0) + 4 + item.frame.length;
    parts.push({ conv, users, item });
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let o = 0;
  out[o++] = MAGIC;
  out[o++] = FORMAT;
  view.setUint32(o, items.length, true);
  o += 4;
  for (const { conv, users, item } of parts) {
    view.setUint16(o, conv.length, true);
    o += 2;
    out.set(conv, o);
    o += conv.length;
    view.setFloat64(o, item.version, true);
    o += 8;
    view.setUint32(o, users.length, true);
    o += 4;
    for (const u of users) {
      view.setUint16(o, u.length, true);
      o += 2;
      out.set(u, o);
      o += u.length;
    }
    view.setUint32(o, item.frame.length, true);
    o += 4;
    out.set(item.frame, o);
    o += item.frame.length;
  }
  return out;
}

export function decodeDeliveries(bytes: Uint8Array): DeliveryItem[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const need = (n: number) => {
    if (o + n > bytes.length) throw new EnvelopeError('truncated delivery envelope');
  };
  const str = (len: number) => {
    need(len);
    const s = decoder.decode(bytes.subarray(o, o + len));
    o += len;
    if (s.length === 0) throw new EnvelopeError('empty id');
    return s;
  };
  need(6);
  if (bytes[0] !== MAGIC || bytes[1] !== FORMAT) throw new EnvelopeError('not a delivery envelope (magic / format)');
  const count = view.getUint32(2, true);
  o = 6;
  const items: DeliveryItem[] = [];
  for (let i = 0; i < count; i++) {
    need(2);
    const convLen = view.getUint16(o, true);
    o += 2;
    const conversationId = str(convLen);
    need(12);
    const version = view.getFloat64(o, true);
    o += 8;
    if (!Number.isSafeInteger(version) || version < 1) throw new EnvelopeError('bad version');
    const users = view.getUint32(o, true);
    o += 4;
    if (users > bytes.length) throw new EnvelopeError('bad user count');
    const userIds: string[] = [];
    for (let u = 0; u < users; u++) {
      need(2);
      const len = view.getUint16(o, true);
      o += 2;
      userIds.push(str(len));
    }
    need(4);
    const len = view.getUint32(o, true);
    o += 4;
    need(len);
    const frame = bytes.slice(o, o + len);
    o += len;
    items.push({ conversationId, version, userIds, frame });
  }
  if (o !== bytes.length) throw new EnvelopeError('trailing bytes after the delivery envelope');
  return items;
}
