import { UUID_ANY_CASE as UUID } from '../../domain/fields.js';
import {
  DuplicateEventIdError,
  WrongExpectedVersionError,
  type AppendResult,
  type NewEvent,
} from '../../domain/ports/event-store.js';

/**
 * The pure part of an append: validating one call's input (so a bad call fails alone, before it
 * can join a batch) and deciding, for a batch of calls in queue order, which succeed, which are
 * idempotent repeats and which fail — exactly as if they had run one after another.
 */

export type PreparedEvent = {
  eventId: string;
  type: string;
  dataJson: string;
  metadataJson: string;
};

export type PreparedAppend = {
  streamId: string;
  expectedVersion: number;
  events: PreparedEvent[];
};

/**
 * Where an event id already is: stored (absolute log position), or written earlier in the batch
 * being planned (`inBatch`, position relative to the batch: 1 = its first row).
 */
export type KnownEvent = { streamId: string; version: number; position: number; inBatch?: boolean };

/** What a batch is decided against: current stream versions (absent = 0) and known event ids. */
export type BatchState = {
  versions: ReadonlyMap<string, number>;
  knownIds: ReadonlyMap<string, KnownEvent>;
};

/** The rows to insert, in log order: row i gets position base + i + 1. */
export type BatchRows = {
  streamIds: string[];
  versions: number[];
  eventIds: string[];
  types: string[];
  data: string[];
  metadata: string[];
};

/** `relative`: result.lastPosition counts from the batch's base and needs rebasing. */
export type Outcome = { ok: true; result: AppendResult; relative: boolean } | { ok: false; error: Error };

export type BatchPlan = { outcomes: Outcome[]; rows: BatchRows };

/** An escaped NUL or lone surrogate in JSON.stringify output: PostgreSQL's jsonb rejects both. */
const JSONB_UNSAFE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;
/** Not allowed in stream ids and types: control characters (the store uses U+001E as a separator) and lone surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: detects the control characters refused in stream ids and types
const UNSAFE_TEXT = /[\u0000-\u001f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export class InvalidAppendError extends TypeError {
  override readonly name = 'InvalidAppendError';
}

function checkText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidAppendError(`${what} must be a non-empty string`);
  if (UNSAFE_TEXT.test(value)) throw new InvalidAppendError(`${what} contains a control character or a lone surrogate`);
  return value;
}

function toJson(value: unknown, what: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new InvalidAppendError(`${what} is not JSON-serialisable: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (json === undefined) return 'null';
  if (json.includes('\\u') && JSONB_UNSAFE_ESCAPE.test(json)) {
    throw new InvalidAppendError(`${what} contains a NUL character or a lone surrogate, which jsonb cannot store`);
  }
  return json;
}

/** Validates and serialises one append call; throws InvalidAppendError or DuplicateEventIdError. */
export function prepareAppend(streamId: string, events: NewEvent[], expectedVersion: number): PreparedAppend {
  checkText(streamId, 'stream id');
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
    throw new InvalidAppendError(`expectedVersion must be a non-negative integer, got ${String(expectedVersion)}`);
  }
  if (!Array.isArray(events) || events.length === 0) throw new InvalidAppendError('append needs at least one event');
  const seen = new Set<string>();
  const prepared = events.map((event, i): PreparedEvent => {
    if (typeof event !== 'object' || event === null) throw new InvalidAppendError(`event ${i} is not an object`);
    if (typeof event.event_id !== 'string' || !UUID.test(event.event_id)) {
      throw new InvalidAppendError(`event ${i}: event_id must be a UUID, got ${JSON.stringify(event.event_id)}`);
    }
    const eventId = event.event_id.toLowerCase();
    if (seen.has(eventId)) throw new DuplicateEventIdError(eventId);
    seen.add(eventId);
    const metadata = event.metadata ?? {};
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new InvalidAppendError(`event ${i}: metadata must be an object`);
    }
    return {
      eventId,
      type: checkText(event.type, `event ${i}: type`),
      dataJson: toJson(event.data, `event ${i}: data`),
      metadataJson: toJson(metadata, `event ${i}: metadata`),
    };
  });
  return { streamId, expectedVersion, events: prepared };
}

function emptyRows(): BatchRows {
  return { streamIds: [], versions: [], eventIds: [], types: [], data: [], metadata: [] };
}

/**
 * An append whose ids are all known is a repeat when they sit, in order, at consecutive versions
 * of the same stream: it gets the original result. Any other reuse of a known id is an error.
 * Returns undefined when none of the ids is known.
 */
function repeatOf(shard: number, call: PreparedAppend, known: ReadonlyMap<string, KnownEvent>): Outcome | undefined {
  const found = call.events.map((event) => known.get(event.eventId));
  const firstKnown = found.findIndex((hit) => hit !== undefined);
  if (firstKnown === -1) return undefined;
  const first = found[0];
  const consistent =
    first !== undefined &&
    first.streamId === call.streamId &&
    found.every((hit, i) => hit !== undefined && hit.streamId === call.streamId && hit.version === first.version + i);
  if (!consistent) return { ok: false, error: new DuplicateEventIdError(call.events[firstKnown]!.eventId) };
  const last = found[found.length - 1]!;
  return {
    ok: true,
    relative: last.inBatch === true,
    result: { nextExpectedVersion: last.version, firstVersion: first.version, shard, lastPosition: last.position, alreadyAppended: true },
  };
}

/**
 * Decides a batch in queue order against `state`: each call sees the effect of the calls before
 * it. Positions are relative to the batch (see rebase). `state` is not modified.
 */
export function planBatch(shard: number, calls: readonly PreparedAppend[], state: BatchState): BatchPlan {
  const versions = new Map(state.versions);
  const knownIds = new Map(state.knownIds);
  const rows = emptyRows();
  const outcomes = calls.map((call): Outcome => {
    const repeat = repeatOf(shard, call, knownIds);
    if (repeat !== undefined) return repeat;
    const current = versions.get(call.streamId) ?? 0;
    if (current !== call.expectedVersion) {
      return { ok: false, error: new WrongExpectedVersionError(call.streamId, call.expectedVersion, current) };
    }
    call.events.forEach((event, i) => {
      rows.streamIds.push(call.streamId);
      rows.versions.push(current + 1 + i);
      rows.eventIds.push(event.eventId);
      rows.types.push(event.type);
      rows.data.push(event.dataJson);
      rows.metadata.push(event.metadataJson);
      knownIds.set(event.eventId, { streamId: call.streamId, version: current + 1 + i, position: rows.eventIds.length, inBatch: true });
    });
    const n = call.events.length;
    versions.set(call.streamId, current + n);
    return {
      ok: true,
      relative: true,
      result: { nextExpectedVersion: current + n, firstVersion: current + 1, shard, lastPosition: rows.eventIds.length, alreadyAppended: false },
    };
  });
  return { outcomes, rows };
}

/** The outcomes with absolute positions, once the batch's base position (the head before it) is known. */
export function rebase(outcomes: readonly Outcome[], base: number): Outcome[] {
  return outcomes.map((outcome) =>
    outcome.ok && outcome.relative
      ? { ok: true, relative: false, result: { ...outcome.result, lastPosition: outcome.result.lastPosition + base } }
      : outcome,
  );
}
