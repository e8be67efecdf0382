import { stopOn, type Running } from '../lib/role.js';
import { createDeliveryWorker, type DeliveryWorker, type DeliveryWorkerDeps } from './worker.js';

/**
 * The delivery role: consumes the bus's events, routes each to its recipients (the domain's
 * routing), asks presence which nodes hold them, and sends each node one envelope per batch;
 * plans a push job per offline recipient. Reads the bus, presence and the store (a conversation's
 * history, on a gap); writes node envelopes and the push queue.
 */
export async function start(deps: DeliveryWorkerDeps, signal: AbortSignal): Promise<DeliveryWorker & Running> {
  const worker = createDeliveryWorker(deps);
  worker.start();
  return Object.assign(worker, { stopped: stopOn(signal, () => worker.stop()) });
}
