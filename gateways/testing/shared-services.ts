import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { jetstreamManager } from '@nats-io/jetstream';
import { createJetStreamBus } from '../../infra/bus/jetstream.js';
import { pushQueueNames } from '../../infra/push-queue/names.js';
import { deletePushStream } from '../../infra/push-queue/setup.js';
import { createTempDatabases } from '../../infra/testing/postgres.js';

/**
 * A namespace of its own on this machine's shared services for one test: throw-away PostgreSQL
 * databases (one per shard), a NATS prefix (streams `<prefix>_EVENTS` and `<prefix>_PUSH`) and a
 * Redis key prefix. `remove()` deletes the streams, the keys and the databases (run it after the
 * processes stopped).
 */
export const TEST_NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function createSharedNamespace(name: string, shards = 2) {
  const id = `${name}_${randomBytes(4).toString('hex')}`;
  const databases = await createTempDatabases(id, shards);
  const natsPrefix = id;
  const redisPrefix = `${id}:`;
  return {
    databaseUrls: databases.urls,
    natsPrefix,
    redisPrefix,
    /** The environment every process of the topology shares. */
    env: {
      DATABASE_URL: databases.urls.join(','),
      NATS_URL: TEST_NATS_URL,
      NATS_PREFIX: natsPrefix,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: redisPrefix,
    },
    async remove(): Promise<void> {
      const errors: unknown[] = [];
      try {
        const bus = await createJetStreamBus({ servers: TEST_NATS_URL, prefix: natsPrefix, setup: false });
        try {
          await bus.deleteStream();
          // The push work queue, made by the delivery role (it queues jobs for offline users).
          await deletePushStream(await jetstreamManager(bus.connection), pushQueueNames(natsPrefix));
        } finally {
          await bus.close();
        }
      } catch (error) {
        errors.push(error);
      }
      const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
      try {
        await redis.connect();
        let cursor = '0';
        do {
          const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 500);
          cursor = nextCursor;
          if (keys.length > 0) await redis.del(...keys);
        } while (cursor !== '0');
      } catch (error) {
        errors.push(error);
      } finally {
        redis.disconnect();
      }
      try {
        await databases.drop();
      } catch (error) {
        errors.push(error);
      }
      if (errors.length > 0) throw new AggregateError(errors, `could not remove every resource of ${id}`);
    },
  };
}
