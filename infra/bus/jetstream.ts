import { jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { StoredEvent } from '../../domain/ports/event-store.js';
import { DependencyUnavailableError, isOutage, unreported, type DependencyRegistry } from '../../domain/ports/health.js';
import {
  CONSUMER_DEFAULTS,
  deleteStream,
  ensureConsumer,
  ensureStream,
  type ConsumerSettings,
  type StreamLimits,
} from './jetstream-setup.js';
import { createJetStreamPublisher } from './jetstream-publisher.js';
import { silentLogger, type BusLogger } from './logger.js';
import { decodeEvent, encodeEvent, storedEventProblem } from './payload.js';
import type { ConsumeOptions, EventBus } from '../../gateways/ports/bus.js';
import { anySignal, backoffDelay, resolveRetry, sleep, type RetryPolicy } from './retry.js';
import { busNames, type BusNames } from './subjects.js';

/**
 * The event bus on NATS JetStream (see port.ts for the guarantees, subjects.ts for the names,
 * jetstream-setup.ts for the stream and consumer configuration).
 *
 * - publish: one JetStream publish per event, `Nats-Msg-Id` = event_id (the server drops a
 *   re-published id within the stream's duplicate window), up to `publishConcurrency` in flight on
 *   the one connection (the server stores them in the order sent), resolved when every PubAck is in;
 *   the PubAcks come back on one reply subscription (jetstream-publisher.ts).
 * - consume: a durable pull consumer named after the group, explicit acks. A member pulls at most
 *   `batchSize` events at a time and hands whatever has arrived (up to batchSize) to the handler
 *   at once: latency stays one round trip, throughput comes from batching under load. Ack after the
 *   handler resolves; a throwing handler gets its batch nak'd with a capped exponential delay; a
 *   payload that is not a valid event is term'd and counted (never retried, never crashes);
 *   an event at its last allowed delivery is term'd and counted as dropped.
 * - node messages: core NATS on `<prefix>.node.<node id>`, at-most-once.
 */
export type JetStreamBusOptions = {
  /** Servers to connect to (the bus owns and closes that connection)... */
  servers?: string | string[];
  /** ...or an existing connection (left open by close()). */
  nc?: NatsConnection;
  /** Namespace of every subject, the stream and the consumers (subjects.ts). */
  prefix: string;
  stream?: StreamLimits;
  consumer?: ConsumerSettings;
  /** Create / update the stream when the bus is created (default true). */
  setup?: boolean;
  /** Delay before a failed batch is redelivered (default 200 ms doubling up to 30 s). */
  retry?: RetryPolicy;
  /** Wait for one PubAck at most (default 5 s). */
  publishTimeoutMs?: number;
  /** Publishes in flight at most (default 256). */
  publishConcurrency?: number;
  /** Lifetime of one pull request (default 10 s, minimum 1 s); an idle member re-pulls this often. */
  fetchExpiresMs?: number;
  connectionName?: string;
  logger?: BusLogger;
  /** Where the bus registers NATS (name "nats", probed with a flush) and reports its connection's state. */
  health?: DependencyRegistry;
};

export type JetStreamBusStats = {
  published: number;
  /** Publishes the server recognised as duplicates (same Nats-Msg-Id within the window). */
  duplicates: number;
  delivered: number;
  acked: number;
  /** Events handed back (handler failed, or fetched while stopping). */
  nacked: number;
  /** Payloads that were not valid events (term'd). */
  invalid: number;
  /** Events term'd at their last allowed delivery. */
  dropped: number;
  /** Pull / consumer errors that were retried. */
  fetchErrors: number;
};

export type JetStreamBus = EventBus & {
  readonly names: BusNames;
  readonly connection: NatsConnection;
  stats(): JetStreamBusStats;
  /** Deletes the stream and its consumers (tests, decommissioning). */
  deleteStream(): Promise<boolean>;
};

function positiveInt(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

export async function createJetStreamBus(options: JetStreamBusOptions): Promise<JetStreamBus> {
  const names = busNames(options.prefix);
  if ((options.servers === undefined) === (options.nc === undefined)) {
    throw new TypeError('createJetStreamBus needs exactly one of `servers` or `nc`');
  }
  const logger = options.logger ?? silentLogger;
  const retry = resolveRetry(options.retry);
  const publishTimeoutMs = positiveInt('publishTimeoutMs', options.publishTimeoutMs ?? 5_000);
  const publishConcurrency = positiveInt('publishConcurrency', options.publishConcurrency ?? 256);
  const fetchExpiresMs = Math.max(1_000, options.fetchExpiresMs ?? 10_000);
  const consumerSettings = { ...CONSUMER_DEFAULTS, ...options.consumer };

  const ownsConnection = options.nc === undefined;
  const nc =
    options.nc ??
    (await connect({
      servers: options.servers,
      name: options.connectionName ?? `event-bus-${names.prefix}`,
      maxReconnectAttempts: -1,
      // Without this every request (each JetStream publish is one) builds two Error objects up
      // front for their stack traces: about 8 % of the relay process's CPU under load. A failed
      // publish still reports what failed; only the async stack is shorter.
      noAsyncTraces: true,
    }));

  let jsm: JetStreamManager;
  let js: JetStreamClient;
  try {
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
    if (options.setup ?? true) await ensureStream(jsm, names, options.stream);
  } catch (error) {
    if (ownsConnection) await nc.close().catch(() => {});
    throw error;
  }

  const health = options.health?.register('nats', () => nc.flush()) ?? unreported;
  /** False from a disconnection until the reconnection: failures meanwhile are the outage, not bugs. */
  let connected = true;
  /**
   * Disconnections and reconnections so far: an operation that spanned one (a publish begun before
   * the server went, or while it was away, whose PubAck never came) failed of the outage too.
   */
  let connectionChanges = 0;
  const outage = (error: unknown, since = connectionChanges): unknown =>
    (connected && connectionChanges === since) || isOutage(error) ? error : new DependencyUnavailableError('nats', { cause: error });
  const reconnectListeners = new Set<() => void>();
  /** After a reconnection: once the resent subscriptions reached the server, tell the listeners. */
  const reconnected = () => {
    nc.flush().then(
      () => {
        health.up();
        for (const listener of [...reconnectListeners]) {
          try {
            listener();
          } catch (error) {
            logger.error({ err: error }, 'event bus: a reconnect listener threw');
          }
        }
      },
      (error: unknown) => logger.warn({ err: error }, 'event bus: flush after a reconnection failed (disconnected again?)'),
    );
  };
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        connected = false;
        connectionChanges++;
        health.down(new Error(`disconnected from ${status.server}`));
      } else if (status.type === 'reconnect') {
        connected = true;
        connectionChanges++;
        reconnected();
      } else if (status.type === 'error') {
        logger.warn({ err: status.error }, 'event bus: NATS connection error');
      }
    }
  })().catch(() => {});

  const stats: JetStreamBusStats = {
    published: 0,
    duplicates: 0,
    delivered: 0,
    acked: 0,
    nacked: 0,
    invalid: 0,
    dropped: 0,
    fetchErrors: 0,
  };
  const closing = new AbortController();
  const members = new Set<Promise<void>>();
  const nodeSubscriptions = new Set<Subscription>();
  let closed: Promise<void> | undefined;

  const assertOpen = () => {
    if (closed !== undefined) throw new Error('the bus is closed');
  };

  const publisher = createJetStreamPublisher(nc, publishTimeoutMs);

  async function publishOne(event: StoredEvent, subject: string, payload: Uint8Array): Promise<void> {
    const ack = await publisher.publish(subject, payload, event.event_id);
    if (ack.stream !== names.stream) {
      throw new Error(`event ${event.event_id} landed in stream ${ack.stream}, not ${names.stream}: overlapping stream subjects`);
    }
    if (ack.duplicate) stats.duplicates++;
    else stats.published++;
  }

  /** Settles one batch: ack on success, nak with back-off on failure, term what can never succeed. */
  async function handleBatch(group: string, batch: JsMsg[], handler: (events: StoredEvent[]) => Promise<void>): Promise<void> {
    const valid: { msg: JsMsg; event: StoredEvent }[] = [];
    for (const msg of batch) {
      const decoded = decodeEvent(msg.data);
      const subjectShard = names.shardOfSubject(msg.subject);
      if (decoded.ok && subjectShard === decoded.event.shard) {
        valid.push({ msg, event: decoded.event });
      } else {
        stats.invalid++;
        msg.term();
        logger.error(
          { group, subject: msg.subject, seq: msg.seq, reason: decoded.ok ? 'subject shard differs from the event shard' : decoded.reason },
          'event bus: invalid payload terminated',
        );
      }
    }
    if (valid.length === 0) return;
    stats.delivered += valid.length;
    // Keep the batch with this member while the handler runs longer than a part of ack_wait.
    const keepAlive = setInterval(() => {
      for (const { msg } of valid) msg.working();
    }, Math.max(100, Math.floor(consumerSettings.ackWaitMs / 3)));
    try {
      await handler(valid.map((v) => v.event));
      for (const { msg } of valid) msg.ack();
      stats.acked += valid.length;
    } catch (error) {
      const deliveries = Math.max(...valid.map((v) => v.msg.info.deliveryCount));
      const delayMs = backoffDelay(deliveries, retry);
      // A handler that failed because a dependency is down (logged once by its health) says so quietly.
      (isOutage(error) ? (logger.debug ?? logger.warn) : logger.warn).call(logger, { err: error, group, events: valid.length, deliveries, delayMs }, 'event bus: handler failed; redelivering');
      for (const { msg, event } of valid) {
        if (msg.info.deliveryCount >= consumerSettings.maxDeliver) {
          stats.dropped++;
          msg.term();
          logger.error({ group, event_id: event.event_id, deliveries: msg.info.deliveryCount }, 'event bus: event given up after maxDeliver');
        } else {
          stats.nacked++;
          msg.nak(delayMs);
        }
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  async function member(
    group: string,
    started: Consumer,
    handler: (events: StoredEvent[]) => Promise<void>,
    batchSize: number,
    signal: AbortSignal,
  ) {
    let consumer: Consumer | undefined = started;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (consumer === undefined) {
          await ensureConsumer(jsm, names, group, consumerSettings);
          consumer = await js.consumers.get(names.stream, names.durable(group));
        }
        const messages = await consumer.fetch({ max_messages: batchSize, expires: fetchExpiresMs });
        const stop = () => void messages.close();
        signal.addEventListener('abort', stop, { once: true });
        if (signal.aborted) stop(); // aborted while the pull was being set up
        try {
          const iterator = messages[Symbol.asyncIterator]();
          while (true) {
            const first = await iterator.next();
            if (first.done) break;
            const batch = [first.value];
            // Everything that has already arrived joins the batch; nothing waits for more.
            while (batch.length < batchSize && messages.getPending() > 0) {
              const next = await iterator.next();
              if (next.done) break;
              batch.push(next.value);
            }
            if (signal.aborted) {
              // Fetched while stopping: hand back at once rather than after ack_wait.
              for (const msg of batch) msg.nak();
              stats.nacked += batch.length;
              continue;
            }
            await handleBatch(group, batch, handler);
          }
        } finally {
          signal.removeEventListener('abort', stop);
        }
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        stats.fetchErrors++;
        failures++;
        consumer = undefined; // the consumer may be gone (deleted, server restarted): ensure it again
        const delayMs = backoffDelay(failures, retry);
        const failure = outage(error);
        (isOutage(failure) ? (logger.debug ?? logger.warn) : logger.warn).call(logger, { err: failure, group, failures, delayMs }, 'event bus: pull failed; retrying');
        await sleep(delayMs, signal);
      }
    }
    // Acks are fire-and-forget protocol messages: make sure they left before reporting stopped.
    await nc.flush().catch(() => {});
  }

  const bus: JetStreamBus = {
    names,
    connection: nc,

    async publish(events: StoredEvent[]): Promise<void> {
      assertOpen();
      const since = connectionChanges;
      // Validate and encode everything first: an invalid event publishes nothing.
      const prepared = events.map((event) => {
        const problem = storedEventProblem(event);
        if (problem !== undefined) throw new TypeError(`not a stored event: ${problem}`);
        return { event, subject: names.eventSubject(event), payload: encodeEvent(event) };
      });
      const inFlight = new Set<Promise<void>>();
      const errors: unknown[] = [];
      for (const { event, subject, payload } of prepared) {
        if (errors.length > 0) break; // the caller re-publishes the whole call; stop sending more
        const sent = publishOne(event, subject, payload).catch((error: unknown) => {
          errors.push(error);
        });
        inFlight.add(sent);
        void sent.finally(() => inFlight.delete(sent));
        if (inFlight.size >= publishConcurrency) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (errors.length > 0) {
        const first = errors[0];
        throw outage(
          new Error(`publish failed for ${errors.length} of ${prepared.length} events: ${first instanceof Error ? first.message : String(first)}`, {
            cause: first,
          }),
          since,
        );
      }
    },

    async consume(group: string, handler: (events: StoredEvent[]) => Promise<void>, consumeOptions: ConsumeOptions = {}): Promise<void> {
      assertOpen();
      names.durable(group); // validates the group name before anything runs
      const batchSize = positiveInt('batchSize', consumeOptions.batchSize ?? 100);
      // Set-up errors (no stream, no permission) surface to the caller instead of being retried forever.
      await ensureConsumer(jsm, names, group, consumerSettings);
      const consumer = await js.consumers.get(names.stream, names.durable(group));
      const signal = anySignal([consumeOptions.signal, closing.signal]);
      const running = member(group, consumer, handler, batchSize, signal);
      members.add(running);
      try {
        await running;
      } finally {
        members.delete(running);
      }
    },

    sendToNode(nodeId: string, payload: Uint8Array): void {
      assertOpen();
      // The client queues a reference to the bytes until its next write: copy, so a caller that
      // reuses its buffer cannot change a message already sent.
      nc.publish(names.nodeSubject(nodeId), payload.slice());
    },

    onNodeMessage(nodeId: string, handler: (payload: Uint8Array) => void): () => void {
      assertOpen();
      const subscription = nc.subscribe(names.nodeSubject(nodeId), {
        callback: (error, msg) => {
          if (error !== null) {
            logger.error({ err: error, nodeId }, 'event bus: node subscription failed');
            return;
          }
          try {
            handler(msg.data);
          } catch (handlerError) {
            logger.error({ err: handlerError, nodeId }, 'event bus: node message handler threw');
          }
        },
      });
      nodeSubscriptions.add(subscription);
      return () => {
        nodeSubscriptions.delete(subscription);
        if (!subscription.isClosed()) subscription.unsubscribe();
      };
    },

    async flush(): Promise<void> {
      assertOpen();
      await nc.flush();
    },

    onReconnect(listener: () => void): () => void {
      reconnectListeners.add(listener);
      return () => {
        reconnectListeners.delete(listener);
      };
    },

    stats: () => ({ ...stats }),

    deleteStream: () => deleteStream(jsm, names),

    close(): Promise<void> {
      closed ??= (async () => {
        closing.abort();
        reconnectListeners.clear();
        await Promise.allSettled([...members]);
        publisher.close();
        for (const subscription of nodeSubscriptions) if (!subscription.isClosed()) subscription.unsubscribe();
        nodeSubscriptions.clear();
        if (ownsConnection) {
          const timeout = new AbortController();
          await Promise.race([nc.flush().catch(() => {}), sleep(2_000, timeout.signal)]);
          timeout.abort();
          await nc.close().catch(() => {});
        }
      })();
      return closed;
    },
  };
  return bus satisfies EventBus;
}
