import { stopOn, type Running } from '../lib/role.js';
import { createWsGateway, type WsGateway, type WsGatewayDeps } from './gateway.js';

/**
 * The gateway role: the WebSocket edge (uWebSockets.js, the binary protocol): Hello and tokens,
 * commands (send, receipts), typing and presence, sync from the store, and the delivery envelopes
 * of this node pushed to its connections. Reads tokens, sessions, the store and read models,
 * presence and its node's envelopes; writes commands and presence. The caller listens
 * (`listen(host, port)`) once every role is up.
 */
export async function start(deps: WsGatewayDeps, signal: AbortSignal): Promise<WsGateway & Running> {
  const gateway = createWsGateway(deps);
  return Object.assign(gateway, { stopped: stopOn(signal, () => gateway.close()) });
}
