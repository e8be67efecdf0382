import { stopOn, type Running } from '../lib/role.js';
import { createPushPipeline, type PushPipeline, type PushPipelineDeps } from './pipeline.js';

/**
 * The push role: empties the push queue, batching per user, and sends to the devices of users
 * with no live connection through the provider (FCM, or the log). Reads the queue, presence, users
 * and devices; writes to the provider, and removes the tokens it refuses.
 */
export async function start(deps: PushPipelineDeps, signal: AbortSignal): Promise<PushPipeline & Running> {
  const pipeline = createPushPipeline(deps);
  pipeline.start();
  return Object.assign(pipeline, { stopped: stopOn(signal, () => pipeline.stop()) });
}
