import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from '../../infra/config/config.js';
import type { DependencyRegistry } from '../../domain/ports/health.js';
import { createFcmPushProvider } from '../../infra/push/fcm.js';
import { createLogPushProvider } from '../../infra/push/log.js';
import type { PushProvider } from '../ports/push-provider.js';
import { createJetStreamPushQueue } from '../../infra/push-queue/jetstream.js';
import { createMemoryPushQueue } from '../../infra/push-queue/memory.js';
import type { PushQueue } from '../ports/push-queue.js';

/**
 * The push queue as the configuration chooses it (called by the composition root, process.ts, only, for the
 * delivery role that fills it and the push role that empties it): JetStream when NATS_URL is set
 * (NATS_PREFIX namespace), in process otherwise (where both roles share one process).
 */
export async function pushQueueFromConfig(config: Config, logger: Logger, health?: DependencyRegistry): Promise<PushQueue> {
  return config.natsUrl === null
    ? createMemoryPushQueue()
    : createJetStreamPushQueue({
        servers: config.natsUrl.split(','),
        prefix: config.natsPrefix,
        logger,
        connectionName: `chat-backend-push-${config.nodeId}`,
        ...(health !== undefined ? { health } : {}),
      });
}

/** The push provider PUSH_PROVIDER names: the log, or FCM with FCM_CREDENTIALS_FILE. */
export async function pushProviderFromConfig(config: Config, logger: Logger): Promise<PushProvider> {
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
