import { jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { backoffDelay, resolveRetry, sleep } from '../bus/retry.js';
import { unreported, type DependencyRegistry } from '../../domain/ports/health.js';
import { decodeJob, encodeJob, type PushJob } from '../../gateways/ports/push-job.js';
import { pushQueueNames, type PushQueueNames } from './names.js';
import { deletePushStream, ensurePushConsumer, ensurePushStream } from './setup.js';
import type { HeldJob, PushQueue } from '../../gateways/ports/push-queue.js';

/**
 * The push queue on a JetStream work-queue stream (see queue.ts for the guarantees,
 * queue-names.ts for the names, queue-setup.ts for the stream and consumer).
 * Enqueue publishes with `Nats-Msg-Id` = job_id; consumers share one durable pull consumer;
 * a payload that is not a valid job is term'd and logged.
 */
export type JetStreamPushQueueOptions = {
  servers?: string | string[];
  nc?: NatsConnection;
  prefix: string;
  logger: Pick<Logger, 'warn' | 'error'>;
  connectionName?: string;
  /** Where the queue reports its NATS connection's state (as "nats", the bus's dependency too). */
  health?: DependencyRegistry;
};

export type JetStreamPushQueue = PushQueue & { readonly names: PushQueueNames; deleteStream(): Promise<boolean> };

export async function createJetStreamPushQueue(options: JetStreamPushQueueOptions): Promise<JetStreamPushQueue> {
  if ((options.servers === undefined) === (options.nc === undefined)) throw new TypeError('createJetStreamPushQueue needs exactly one of `servers` or `nc`');
  const names = pushQueueNames(options.prefix);
  const ownsConnection = options.nc === undefined;
  const nc = options.nc ?? (await connect({ servers: options.servers, name: options.connectionName ?? `push-queue-${options.prefix}`, maxReconnectAttempts: -1 }));
  const jsm = await jetstreamManager(nc).catch(async (error: unknown) => {
    if (ownsConnection) await nc.close().catch(() => {});
    throw error;
  });
  try {
    await ensurePushStream(jsm, names);
  } catch (error) {
    if (ownsConnection) await nc.close().catch(() => {});
    throw error;
  }
  const js = jetstream(nc);
  const health = options.health?.register('nats', () => nc.flush()) ?? unreported;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') health.down(new Error(`disconnected from ${status.server}`));
      else if (status.type === 'reconnect') health.up();
    }
  })().catch(() => {});
  const retry = resolveRetry();
  const closing = new AbortController();
  const running = new Set<Promise<void>>();
  let closed: Promise<void> | undefined;

  async function consumeLoop(handler: (held: HeldJob) => void, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let messages: ConsumerMessages | undefined;
      const stop = () => void messages?.close();
      try {
        await ensurePushConsumer(jsm, names);
        const consumer = await js.consumers.get(names.stream, names.durable);
        messages = await consumer.consume({ max_messages: 500 });
        signal.addEventListener('abort', stop, { once: true });
        if (signal.aborted) stop();
        for await (const msg of messages) {
          failures = 0;
          const decoded = decodeJob(msg.data);
          if (!decoded.ok) {
            msg.term();
            options.logger.error({ subject: msg.subject, reason: decoded.reason }, 'push queue: invalid job terminated');
            continue;
          }
          let settled = false;
          handler({
            job: decoded.job,
            deliveries: msg.info.deliveryCount,
            ack() {
              if (settled) return;
              settled = true;
              msg.ack();
            },
            retryLater(delayMs: number) {
              if (settled) return;
              settled = true;
              msg.nak(delayMs);
            },
            keepAlive() {
              if (!settled) msg.working();
            },
          });
        }
        // The iterator ended without a stop (consumer deleted, server restarted): set up again, not in a hot loop.
        if (!signal.aborted) throw new Error('push queue consumer ended');
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        const delayMs = backoffDelay(failures, retry);
        options.logger.warn({ err: error, failures, delayMs }, 'push queue: consumer failed; retrying');
        await sleep(delayMs, signal);
      } finally {
        signal.removeEventListener('abort', stop);
      }
    }
  }

  return {
    kind: 'jetstream',
    names,
    async enqueue(jobs: PushJob[]) {
      if (closed) throw new Error('the push queue is closed');
      await Promise.all(jobs.map((job) => js.publish(names.jobSubject(job.user_id), encodeJob(job), { msgID: job.job_id, timeout: 5_000 })));
    },
    async consume(handler: (held: HeldJob) => void, signal: AbortSignal) {
      if (closed) throw new Error('the push queue is closed');
      const loop = consumeLoop(handler, AbortSignal.any([signal, closing.signal]));
      running.add(loop);
      try {
        await loop;
      } finally {
        running.delete(loop);
      }
    },
    deleteStream: () => deletePushStream(jsm, names),
    close() {
      closed ??= (async () => {
        closing.abort();
        await Promise.allSettled([...running]);
        await nc.flush().catch(() => {});
        if (ownsConnection) await nc.close().catch(() => {});
      })();
      return closed;
    },
  } satisfies JetStreamPushQueue;
}
