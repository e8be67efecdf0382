import { stopOn, type Running } from '../lib/role.js';
import { createRelay, type Relay, type RelayDeps } from './relay.js';

/**
 * The relay role: publishes every committed event of the store to the bus, gap-safe and once per
 * event id, one leader per shard (relay.ts). Reads the event store and `relay_checkpoints`; writes
 * the bus and its checkpoints.
 */
export async function start(deps: RelayDeps, signal: AbortSignal): Promise<Relay & Running> {
  const relay = createRelay(deps);
  await relay.start();
  return Object.assign(relay, { stopped: stopOn(signal, () => relay.stop()) });
}
