import { z } from 'zod';
import type { StoredEvent } from '../../domain/ports/event-store.js';

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

/**
 * What is wrong with `event` by the rules of storedEventSchema, or undefined when nothing is:
 * the check publish() makes (an invalid event publishes nothing), without zod's cost per event.
 * Published events come typed from this process's own store, so all it can catch is a caller bug;
 * payloads from the bus, from outside, are still parsed with the schema. payload.unit.spec.ts
 * holds the two to the same answers.
 */
export function storedEventProblem(event: StoredEvent): string | undefined {
  const e: Record<string, unknown> = event;
  for (const key of ['event_id', 'type', 'stream_id', 'created_at'] as const) {
    const value = e[key];
    if (typeof value !== 'string' || value.length === 0) return `${key}: expected a non-empty string`;
  }
  if (e.data === undefined) return 'data: data is required';
  const { metadata } = e;
  if (typeof metadata !== 'object' || metadata === null || !isPlainObject(metadata)) return 'metadata: expected an object';
  if (!isInteger(e.version, 1)) return 'version: expected a positive integer';
  if (!isInteger(e.shard, 0)) return 'shard: expected a non-negative integer';
  if (!isInteger(e.position, 1)) return 'position: expected a positive integer';
  return undefined;
}

const isPlainObject = (value: object): boolean => {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

const isInteger = (value: unknown, min: number): boolean => typeof value === 'number' && Number.isSafeInteger(value) && value >= min;

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
