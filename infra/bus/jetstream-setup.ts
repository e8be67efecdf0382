import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { BusNames } from './subjects.js';

/**
 * Set-up of the bus's JetStream resources (the jetstreamManager side), apart from using them.
 * Everything here is idempotent and safe to run from several processes at once.
 *
 * Written for nats-server 2.9.10 and later:
 * - one `filter_subject` string per consumer (`filter_subjects` arrays are 2.10+; the client
 *   refuses them on 2.9, an older client would send them and 2.9 would ignore them);
 * - no consumer `metadata`, no stream `subject_transform`, `compression`, `first_seq` (2.10+);
 * - creating a durable that already exists with the same config is a no-op, and on 2.9.10 also
 *   applies changes of editable fields (ack_wait, max_deliver, max_ack_pending); on 2.10+ a
 *   different config is refused (consumer already exists), so that case falls back to update().
 */

export type StreamLimits = {
  /** Age after which events leave the stream (default 24 h). The store is the truth: this only bounds replays. */
  maxAgeMs?: number;
  /** Bytes kept at most (default 1 GiB; oldest go first). */
  maxBytes?: number;
  /** Nats-Msg-Id dedupe window (default 2 min). */
  duplicateWindowMs?: number;
  /** Largest event accepted (default 1 MiB; the server's max_payload also applies). */
  maxMsgSize?: number;
  /** Replicas (default 1; R3 in a cluster). */
  replicas?: number;
};

export type ConsumerSettings = {
  /** Time a delivered, unacknowledged event stays with its member (default 30 s; long handlers send working()). */
  ackWaitMs?: number;
  /** Deliveries of one event before the server gives up on it (default 1,000). */
  maxDeliver?: number;
  /** Unacknowledged events per group at most (default 1,000). */
  maxAckPending?: number;
};

export const STREAM_DEFAULTS: Readonly<Required<StreamLimits>> = Object.freeze({
  maxAgeMs: 24 * 60 * 60 * 1000,
  maxBytes: 1024 * 1024 * 1024,
  duplicateWindowMs: 2 * 60 * 1000,
  maxMsgSize: 1024 * 1024,
  replicas: 1,
});

export const CONSUMER_DEFAULTS: Readonly<Required<ConsumerSettings>> = Object.freeze({
  ackWaitMs: 30_000,
  maxDeliver: 1_000,
  maxAckPending: 1_000,
});

const CONSUMER_ALREADY_EXISTS = 10148; // 2.10+: create with a different config
const STREAM_NAME_IN_USE = 10058; // stream exists with a different configuration

export function streamConfig(names: BusNames, limits: StreamLimits = {}): Partial<StreamConfig> & { name: string } {
  const l = { ...STREAM_DEFAULTS, ...limits };
  if (l.duplicateWindowMs > l.maxAgeMs) throw new RangeError('duplicateWindowMs cannot exceed maxAgeMs');
  return {
    name: names.stream,
    subjects: [names.eventsWildcard],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(l.maxAgeMs),
    max_bytes: l.maxBytes,
    max_msgs: -1,
    max_msg_size: l.maxMsgSize,
    duplicate_window: nanos(l.duplicateWindowMs),
    num_replicas: l.replicas,
  };
}

export function consumerConfig(names: BusNames, group: string, settings: ConsumerSettings = {}): Partial<ConsumerConfig> {
  const s = { ...CONSUMER_DEFAULTS, ...settings };
  const durable = names.durable(group);
  return {
    durable_name: durable,
    description: `event bus consumer group ${group}`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    filter_subject: names.eventsWildcard,
    ack_wait: nanos(s.ackWaitMs),
    max_deliver: s.maxDeliver,
    max_ack_pending: s.maxAckPending,
  };
}

const COMPARED_STREAM_FIELDS = ['max_age', 'max_bytes', 'max_msgs', 'max_msg_size', 'duplicate_window', 'num_replicas', 'discard'] as const;

function sameSubjects(a: string[] | undefined, b: string[] | undefined): boolean {
  return JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort());
}

function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

/** Creates the events stream, or updates its limits when they changed. Storage cannot change in place. */
export async function ensureStream(jsm: JetStreamManager, names: BusNames, limits: StreamLimits = {}): Promise<StreamInfo> {
  const wanted = streamConfig(names, limits);
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(names.stream);
  } catch (error) {
    if (apiCode(error) !== 10059) throw error; // stream not found
    try {
      return await jsm.streams.add(wanted);
    } catch (addError) {
      // another process created it meanwhile (maybe with other limits): fall through to compare
      if (apiCode(addError) !== STREAM_NAME_IN_USE) throw addError;
      info = await jsm.streams.info(names.stream);
    }
  }
  const current = info.config;
  if (current.storage !== wanted.storage) {
    throw new Error(`stream ${names.stream} uses ${current.storage} storage, the bus needs ${wanted.storage}: migrate it by hand`);
  }
  const changed =
    !sameSubjects(current.subjects, wanted.subjects) || COMPARED_STREAM_FIELDS.some((field) => current[field] !== wanted[field]);
  if (!changed) return info;
  const { name: _name, storage: _storage, ...update } = wanted;
  return jsm.streams.update(names.stream, update);
}

/** Creates (or brings up to date) the durable pull consumer of a group. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  names: BusNames,
  group: string,
  settings: ConsumerSettings = {},
): Promise<ConsumerInfo> {
  const config = consumerConfig(names, group, settings);
  try {
    return await jsm.consumers.add(names.stream, config);
  } catch (error) {
    if (apiCode(error) !== CONSUMER_ALREADY_EXISTS) throw error;
    const { ack_wait, max_deliver, max_ack_pending, description } = config;
    return jsm.consumers.update(names.stream, names.durable(group), { ack_wait, max_deliver, max_ack_pending, description });
  }
}

/** Deletes the events stream with its consumers (tests, decommissioning); false when it did not exist. */
export async function deleteStream(jsm: JetStreamManager, names: BusNames): Promise<boolean> {
  try {
    return await jsm.streams.delete(names.stream);
  } catch (error) {
    if (apiCode(error) === 10059) return false;
    throw error;
  }
}
