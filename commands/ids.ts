import { createHash, randomFillSync, randomUUID } from 'node:crypto';

export { conversationStreamId } from '../domain/conversation/stream.js';

const DIRECT_NAMESPACE = 'chat:direct-conversation:v1';

/**
 * The id of the direct conversation between two users, the same whoever opens it: a name-based
 * UUID (SHA-1, RFC 9562 version 5 layout) of the sorted pair. Uniqueness per pair then needs no
 * index: opening it twice targets the same stream, and the decider sees it exists.
 */
export function directConversationId(a: string, b: string): string {
  const [x, y] = a < b ? [a, b] : [b, a];
  const bytes = createHash('sha1').update(`${DIRECT_NAMESPACE}\n${x}\n${y}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const newId = (): string => randomUUID();

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Random bytes are drawn 2 KiB at a time, as node:crypto's randomUUID does: one call per 128 ids. */
const POOL_BYTES = 2048;
let pool = Buffer.alloc(0);
let offset = POOL_BYTES;

/**
 * A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix milliseconds, then 74 random bits.
 * Event ids are made this way because the store keeps a unique index on them: ids that grow with
 * time land at the right edge of that B-tree instead of on a random page each, which cut the
 * database's CPU per append by about a tenth in bench:store. Ids made in the same millisecond are
 * not ordered among themselves (nothing relies on it). About 0.2 µs each; the `uuid` package's v7
 * took 5.6 µs here.
 */
export function uuidV7(nowMs: number = Date.now()): string {
  if (offset + 10 > POOL_BYTES) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  const r = pool;
  const o = offset;
  offset += 10;
  const high = Math.floor(nowMs / 0x1_0000_0000); // top 16 of the 48 bits
  const low = nowMs >>> 0;
  return (
    HEX[(high >>> 8) & 0xff]! + HEX[high & 0xff]! + HEX[low >>> 24]! + HEX[(low >>> 16) & 0xff]! + '-' +
    HEX[(low >>> 8) & 0xff]! + HEX[low & 0xff]! + '-' +
    HEX[0x70 | (r[o]! & 0x0f)]! + HEX[r[o + 1]!]! + '-' +
    HEX[0x80 | (r[o + 2]! & 0x3f)]! + HEX[r[o + 3]!]! + '-' +
    HEX[r[o + 4]!]! + HEX[r[o + 5]!]! + HEX[r[o + 6]!]! + HEX[r[o + 7]!]! + HEX[r[o + 8]!]! + HEX[r[o + 9]!]!
  );
}
