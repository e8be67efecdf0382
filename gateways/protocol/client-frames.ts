import { z } from 'zod';
import { ClientMessageId, CursorVersion, DeviceId, Id, text, Version } from '../../domain/fields.js';
import { ContentType, PresenceStatus } from './gen/chat/v1/common_pb.js';
import type { ClientFrame } from './frames.js';
import { MAX_CONTENT_BYTES, MAX_CURSORS, MAX_TOKEN_LENGTH } from './limits.js';

/**
 * What a decoded ClientFrame must hold before the gateway acts on it. protobuf decoding checks
 * the wire types; these schemas check the values (PROTOCOL.md lists the limits). The field rules
 * (ids, text, versions) are the REST API's too: domain/fields.ts.
 */

const Cursor = z.object({ conversationId: Id, lastVersion: CursorVersion });
const Cursors = z
  .array(Cursor)
  .max(MAX_CURSORS)
  .superRefine((cursors, ctx) => {
    const seen = new Set<string>();
    cursors.forEach((cursor, i) => {
      if (seen.has(cursor.conversationId)) {
        ctx.addIssue({ code: 'custom', path: [i, 'conversationId'], message: `conversation ${cursor.conversationId} is listed twice` });
      }
      seen.add(cursor.conversationId);
    });
  });

const Hello = z.object({
  token: z.string().max(MAX_TOKEN_LENGTH),
  protocolVersion: z.number().int().min(1, 'must be at least 1'),
  deviceId: DeviceId,
  cursors: Cursors,
});

const SendMessage = z.object({
  conversationId: Id,
  clientMessageId: ClientMessageId,
  // Each UTF-16 unit is at most 3 bytes of UTF-8: short strings need no counting.
  content: text()
    .refine((s) => s.length * 3 <= MAX_CONTENT_BYTES || utf8Length(s) <= MAX_CONTENT_BYTES, `longer than ${MAX_CONTENT_BYTES} bytes of UTF-8`),
  contentType: z.literal([ContentType.TEXT, ContentType.IMAGE, ContentType.VIDEO, ContentType.FILE], 'unknown or unspecified content type'),
  mediaId: Id.optional(),
});

const Watermark = z.object({ conversationId: Id, upToVersion: Version });

const Typing = z.object({ conversationId: Id, isTyping: z.boolean() });

const SetPresence = z.object({
  status: z.literal([PresenceStatus.ONLINE, PresenceStatus.AWAY, PresenceStatus.OFFLINE], 'unknown or unspecified status'),
});

/** Echoed in the Pong, never stored: any safe integer from 0. */
const Ping = z.object({ clientTimeMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });

const Sync = z.object({ cursors: Cursors.min(1) });

/** An empty token is the gateway's to refuse (UNAUTHENTICATED, as at Hello), not a validation error. */
const Reauthenticate = z.object({ token: z.string().max(MAX_TOKEN_LENGTH) });

export const ClientFrameSchema: z.ZodType<ClientFrame> = z.object({
  requestId: z.number().int().min(0).max(0xffff_ffff),
  body: z.discriminatedUnion('case', [
    z.object({ case: z.literal('hello'), value: Hello }),
    z.object({ case: z.literal('sendMessage'), value: SendMessage }),
    z.object({ case: z.literal('ackDelivered'), value: Watermark }),
    z.object({ case: z.literal('markRead'), value: Watermark }),
    z.object({ case: z.literal('typing'), value: Typing }),
    z.object({ case: z.literal('setPresence'), value: SetPresence }),
    z.object({ case: z.literal('ping'), value: Ping }),
    z.object({ case: z.literal('sync'), value: Sync }),
    z.object({ case: z.literal('reauthenticate'), value: Reauthenticate }),
  ]),
});

/** The number of bytes `s` takes as UTF-8 (lone surrogates count as the 3-byte U+FFFD). */
export function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}
