import type { Logger } from 'pino';
import type { DeviceRegistry } from '../ports/devices.js';
import type { PresenceStore } from '../ports/presence.js';
import type { PushProvider } from '../ports/push-provider.js';
import type { UserRepository } from '../ports/users.js';
import type { PushQueue } from '../ports/push-queue.js';
import { createPushSender, type PushSender, type PushSenderSettings, type PushSenderStats } from './sender.js';

/**
 * The push role: push queue (JetStream work queue, or in process) → sender (per-user batches,
 * rate limit, retries) → provider (FCM, or the log). Jobs are planned by the delivery worker
 * (delivery/worker.ts: offline recipients of each message), which shares the presence answer it
 * routes with. The pipeline owns the provider (stop() closes it); the queue belongs to whoever
 * made it (the composition root, gateways/compose/process.ts, shared with the delivery role in one process).
 */
export type PushPipelineDeps = {
  presence: Pick<PresenceStore, 'nodesOf'>;
  users: Pick<UserRepository, 'findById'>;
  devices: Pick<DeviceRegistry, 'listForUsers' | 'removeTokens'>;
  provider: PushProvider;
  queue: PushQueue;
  logger: Logger;
  settings?: PushSenderSettings;
};

export function createPushPipeline(deps: PushPipelineDeps): PushPipeline {
  const sender = createPushSender({
    queue: deps.queue,
    presence: deps.presence,
    devices: deps.devices,
    users: deps.users,
    provider: deps.provider,
    logger: deps.logger,
    settings: deps.settings,
  });
  let stopped: Promise<void> | undefined;
  return {
    sender,
    provider: deps.provider,
    queue: deps.queue,
    start() {
      sender.start();
    },
    stop(): Promise<void> {
      stopped ??= (async () => {
        await sender.stop();
        await deps.provider.close();
      })();
      return stopped;
    },
    stats: () => ({ sender: sender.stats() }),
  };
}

export interface PushPipeline {
  sender: PushSender;
  provider: PushProvider;
  queue: PushQueue;
  start(): void;
  stop(): Promise<void>;
  stats(): { sender: PushSenderStats };
}
