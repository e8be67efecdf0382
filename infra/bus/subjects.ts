/**
 * Every NATS name the bus uses, built in this one module from a prefix, so deployments (and
 * concurrent test runs on a shared server) never collide:
 *
 *   stream          <prefix>_EVENTS
 *   its subjects    <prefix>.events.>
 *   one event       <prefix>.events.<shard>.<stream token>     (token: the event's stream_id, escaped)
 *   one shard       <prefix>.events.<shard>.*
 *   group consumer  <group>                                     (a durable pull consumer on the stream)
 *   a node          <prefix>.node.<node id>                     (core NATS, not in the stream)
 *
 * Names are restricted to [A-Za-z0-9_-], which is valid as a subject token, a stream name and a
 * consumer name on every nats-server (no dots, wildcards, spaces or path separators).
 */

const NAME = /^[A-Za-z0-9_-]+$/;
/** Characters a stream id keeps in its subject token; every other byte becomes `~XX` (injective). */
const TOKEN_SAFE = /[A-Za-z0-9_=-]/;

export type BusNames = {
  readonly prefix: string;
  /** The JetStream stream holding every event. */
  readonly stream: string;
  /** The stream's subject filter (every shard, every conversation). */
  readonly eventsWildcard: string;
  eventSubject(event: { shard: number; stream_id: string }): string;
  shardWildcard(shard: number): string;
  /** The durable consumer name of a consumer group. */
  durable(group: string): string;
  nodeSubject(nodeId: string): string;
  /** The shard a subject of this stream names, or undefined when it is not an event subject. */
  shardOfSubject(subject: string): number | undefined;
};

export function assertName(what: string, value: string, maxLength = 64): void {
  if (typeof value !== 'string' || !NAME.test(value) || value.length > maxLength) {
    throw new TypeError(`${what} must be 1-${maxLength} characters of [A-Za-z0-9_-], got ${JSON.stringify(value)}`);
  }
}

function assertShard(shard: number): void {
  if (!Number.isSafeInteger(shard) || shard < 0) throw new RangeError(`shard must be a non-negative integer, got ${shard}`);
}

/** Escapes a stream id into one subject token: safe characters stay, every other UTF-8 byte is `~XX`. */
export function subjectToken(value: string): string {
  if (value === '') return '~';
  let out = '';
  for (const char of value) {
    if (TOKEN_SAFE.test(char)) {
      out += char;
    } else {
      for (const byte of Buffer.from(char, 'utf8')) out += `~${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

export function busNames(prefix: string): BusNames {
  assertName('bus prefix', prefix, 32);
  const events = `${prefix}.events`;
  return Object.freeze({
    prefix,
    stream: `${prefix}_EVENTS`,
    eventsWildcard: `${events}.>`,
    eventSubject(event: { shard: number; stream_id: string }) {
      assertShard(event.shard);
      return `${events}.${event.shard}.${subjectToken(event.stream_id)}`;
    },
    shardWildcard(shard: number) {
      assertShard(shard);
      return `${events}.${shard}.*`;
    },
    durable(group: string) {
      assertName('consumer group', group);
      return group;
    },
    nodeSubject(nodeId: string) {
      assertName('node id', nodeId, 128);
      return `${prefix}.node.${nodeId}`;
    },
    shardOfSubject(subject: string) {
      if (!subject.startsWith(`${events}.`)) return undefined;
      const token = subject.slice(events.length + 1).split('.')[0] ?? '';
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      return Number(token);
    },
  });
}
