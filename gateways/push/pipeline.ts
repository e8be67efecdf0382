import type { Logger } from 'pino';
import type { EventBus } from '../../infra/bus/port.js';
import type { DeviceRegistry } from '../../infra/devices/port.js';
import type { EventStore } from '../../infra/event-store/port.js';
import type { PresenceStore } from '../../infra/presence/port.js';
import type { PushProvider } from '../../infra/push/port.js';
import type { UserRepository } from '../../infra/users/port.js';
import { createPushPlanner } from './planner.js';
import type { PushQueue } from './queue.js';
import { createPushSender, type PushSenderSettings } from './sender.js';

/**
 * The push role: bus (group `push`) → planner (offline members of each message) → push queue
 * (JetStream work queue, or in process) → sender (per-user batches, rate limit, retries) →
 * provider (FCM, or the log). The pipeline owns the queue and the provider: stop() closes them.
 */
export type PushPipelineDeps = {
  bus: Pick<EventBus, 'consume'>;
  store: Pick<EventStore, 'readStream'>;
  presence: Pick<PresenceStore, 'nodesOf'>;
  users: Pick<UserRepository, 'findById'>;
  devices: Pick<DeviceRegistry, 'listForUsers' | 'removeTokens'>;
  provider: PushProvider;
  queue: PushQueue;
  logger: Logger;
  settings?: PushSenderSettings & { maxAgeMs?: number };
};

export function createPushPipeline(deps: PushPipelineDeps) {
  const planner = createPushPlanner({ bus: deps.bus, store: deps.store, presence: deps.presence, queue: deps.queue, logger: deps.logger, maxAgeMs: deps.settings?.maxAgeMs });
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
    planner,
    sender,
    provider: deps.provider,
    queue: deps.queue,
    start() {
      sender.start();
      planner.start();
    },
    stop(): Promise<void> {
      stopped ??= (async () => {
        await planner.stop();
        await sender.stop();
        await deps.queue.close();
        await deps.provider.close();
      })();
      return stopped;
    },
    stats: () => ({ planner: planner.stats(), sender: sender.stats() }),
  };
}

export type PushPipeline = ReturnType<typeof createPushPipeline>;
