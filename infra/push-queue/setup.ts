import { AckPolicy, DeliverPolicy, DiscardPolicy, JetStreamApiError, ReplayPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { PushQueueNames } from './names.js';

/**
 * Set-up of the push queue's JetStream resources (apart from using them; idempotent, safe from
 * several processes). A work-queue stream deletes a job when it is acknowledged; a job nobody takes
 * within `maxAgeMs` (1 h) is dropped: a notification that late is noise.
 */
export const PUSH_QUEUE_SETTINGS = Object.freeze({
  maxAgeMs: 60 * 60 * 1000,
  duplicateWindowMs: 2 * 60 * 1000,
  maxBytes: 256 * 1024 * 1024,
  ackWaitMs: 30_000,
  maxDeliver: 10,
  maxAckPending: 20_000,
});

const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;
const CONSUMER_ALREADY_EXISTS = 10148;
const apiCode = (error: unknown) => (error instanceof JetStreamApiError ? error.code : undefined);

export async function ensurePushStream(jsm: JetStreamManager, names: PushQueueNames): Promise<void> {
  try {
    const info = await jsm.streams.info(names.stream);
    if (info.config.retention !== RetentionPolicy.Workqueue) {
      throw new Error(`stream ${names.stream} exists with ${info.config.retention} retention; the push queue needs workqueue: delete it by hand`);
    }
    return;
  } catch (error) {
    if (apiCode(error) !== STREAM_NOT_FOUND) throw error;
  }
  try {
    await jsm.streams.add({
      name: names.stream,
      subjects: [names.wildcard],
      storage: StorageType.File,
      retention: RetentionPolicy.Workqueue,
      discard: DiscardPolicy.Old,
      max_age: nanos(PUSH_QUEUE_SETTINGS.maxAgeMs),
      max_bytes: PUSH_QUEUE_SETTINGS.maxBytes,
      duplicate_window: nanos(PUSH_QUEUE_SETTINGS.duplicateWindowMs),
      num_replicas: 1,
    });
  } catch (error) {
    if (apiCode(error) !== STREAM_NAME_IN_USE) throw error; // created by another process meanwhile
  }
}

export async function ensurePushConsumer(jsm: JetStreamManager, names: PushQueueNames): Promise<void> {
  const config = {
    durable_name: names.durable,
    description: 'push senders (one shared durable)',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    filter_subject: names.wildcard,
    ack_wait: nanos(PUSH_QUEUE_SETTINGS.ackWaitMs),
    max_deliver: PUSH_QUEUE_SETTINGS.maxDeliver,
    max_ack_pending: PUSH_QUEUE_SETTINGS.maxAckPending,
  };
  try {
    await jsm.consumers.add(names.stream, config);
  } catch (error) {
    if (apiCode(error) !== CONSUMER_ALREADY_EXISTS) throw error;
  }
}

/** Deletes the queue's stream and consumer (tests, decommissioning); false when it did not exist. */
export async function deletePushStream(jsm: JetStreamManager, names: PushQueueNames): Promise<boolean> {
  try {
    return await jsm.streams.delete(names.stream);
  } catch (error) {
    if (apiCode(error) === STREAM_NOT_FOUND) return false;
    throw error;
  }
}
