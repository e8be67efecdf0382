import { z } from 'zod';
import type { StoredEvent } from '../event-store/port.js';

/**
 * The wire form of an event on the bus: the StoredEvent as UTF-8 JSON, validated with zod when
 * consumed (a payload from outside is never trusted with a cast).
 */
export const storedEventSchema = z.object({
  event_id: z.string().min(1),
  type: z.string().min(1),
  data: z.unknown().refine((value) => value !== undefined, 'data is required'),
  metadata: z.record(z.string(), z.unknown()),
  stream_id: z.string().min(1),
  version: z.number().int().positive(),
  shard: z.number().int().nonnegative(),
  position: z.number().int().positive(),
  created_at: z.string().min(1),
});

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeEvent(event: StoredEvent): Uint8Array {
  return encoder.encode(JSON.stringify(event));
}

export type DecodeResult = { ok: true; event: StoredEvent } | { ok: false; reason: string };

export function decodeEvent(payload: Uint8Array): DecodeResult {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(payload));
  } catch (error) {
    return { ok: false, reason: `not UTF-8 JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = storedEventSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: z.prettifyError(parsed.error) };
  const event: StoredEvent = parsed.data;
  return { ok: true, event };
}
