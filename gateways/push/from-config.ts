import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from '../../infra/config/config.js';
import type { EventBus } from '../../infra/bus/port.js';
import type { DeviceRegistry } from '../../infra/devices/port.js';
import type { EventStore } from '../../infra/event-store/port.js';
import type { PresenceStore } from '../../infra/presence/port.js';
import { createFcmPushProvider } from '../../infra/push/fcm.js';
import { createLogPushProvider } from '../../infra/push/log.js';
import type { PushProvider } from '../../infra/push/port.js';
import type { UserRepository } from '../../infra/users/port.js';
import { createPushPipeline, type PushPipeline } from './pipeline.js';
import { createJetStreamPushQueue } from './queue-jetstream.js';
import { createMemoryPushQueue } from './queue-memory.js';
import type { PushQueue } from './queue.js';

/**
 * The push role's adapters as the configuration chooses them (called by gateways/main.ts only):
 * provider from PUSH_PROVIDER (log | fcm with FCM_CREDENTIALS_FILE), queue on JetStream when
 * NATS_URL is set (NATS_PREFIX namespace), in process otherwise.
 */
export async function pushFromConfig(deps: {
  config: Config;
  bus: Pick<EventBus, 'consume'>;
  store: Pick<EventStore, 'readStream'>;
  presence: Pick<PresenceStore, 'nodesOf'>;
  users: Pick<UserRepository, 'findById'>;
  devices: Pick<DeviceRegistry, 'listForUsers' | 'removeTokens'>;
  logger: Logger;
  /** Overrides PUSH_PROVIDER (tests). */
  provider?: PushProvider;
}): Promise<PushPipeline> {
  const { config, logger } = deps;
  const provider = deps.provider ?? (await providerFromConfig(config, logger));
  let queue: PushQueue;
  try {
    queue =
      config.natsUrl === null
        ? createMemoryPushQueue()
        : await createJetStreamPushQueue({ servers: config.natsUrl.split(','), prefix: config.natsPrefix, logger, connectionName: `chat-backend-push-${config.nodeId}` });
  } catch (error) {
    await provider.close();
    throw error;
  }
  return createPushPipeline({
    ...deps,
    provider,
    queue,
    settings: { quietMs: config.push.batchQuietMs, maxDelayMs: config.push.batchMaxDelayMs, minIntervalMs: config.push.minIntervalMs },
  });
}

async function providerFromConfig(config: Config, logger: Logger): Promise<PushProvider> {
  if (config.push.provider === 'log') return createLogPushProvider({ logger });
  const file = config.push.fcmCredentialsFile!;
  let serviceAccount: unknown;
  try {
    serviceAccount = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`FCM_CREDENTIALS_FILE: cannot read a JSON service-account key from ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    return createFcmPushProvider({ serviceAccount, projectId: config.push.fcmProjectId ?? undefined });
  } catch (error) {
    throw new Error(`FCM_CREDENTIALS_FILE (${file}): ${error instanceof Error ? error.message : String(error)}`);
  }
}
