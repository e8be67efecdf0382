import {
  MAX_CONNECTIONS_PER_ADDRESS,
  MAX_CONNECTIONS_PER_USER,
  MAX_UNAUTHENTICATED_PER_ADDRESS,
  RECONNECT_AFTER_CONNECTION_CAP_MS,
  RECONNECT_AFTER_HANDSHAKE_CAP_MS,
} from '../protocol/index.js';

/**
 * How many WebSocket connections a gateway node holds per client address, per address before
 * their handshake, and per user (PROTOCOL.md "Limits"). A connection over a cap is refused at the
 * door: the gateway closes it with Goodbye TOO_MANY_CONNECTIONS (4007) and the refusal's
 * reconnect_after_ms. A cap of 0 means no cap.
 *
 * The address caps are checked when the socket opens, the user cap when its Hello's token has been
 * verified (before the user is marked online). Counts are per node: a deployment with N gateway
 * nodes behind a load balancer allows up to N times as many.
 */
export type ConnectionCapsOptions = {
  perUser: number;
  perAddress: number;
  unauthenticatedPerAddress: number;
};

export const DEFAULT_CONNECTION_CAPS: ConnectionCapsOptions = Object.freeze({
  perUser: MAX_CONNECTIONS_PER_USER,
  perAddress: MAX_CONNECTIONS_PER_ADDRESS,
  unauthenticatedPerAddress: MAX_UNAUTHENTICATED_PER_ADDRESS,
});

export type CapRefusal = { reason: 'too_many_connections'; message: string; reconnectAfterMs: number };

/**
 * The caller keeps what was counted for each connection (the address `open` admitted, the user
 * `authenticate` admitted) and hands it back to `close`: no per-connection entry here (an idle
 * connection's memory is counted in bytes, BENCHMARKS.md).
 */
export interface ConnectionCaps {
  /** A socket opened from `address`: counted (total and in handshake) and null, or the refusal (nothing counted). */
  open(address: string): CapRefusal | null;
  /** A counted socket's Hello was accepted for `userId`: counted under the user, no longer in handshake, and null; or the refusal. */
  authenticate(address: string, userId: string): CapRefusal | null;
  /** A counted socket closed: `userId` when `authenticate` had admitted it, else null. */
  close(address: string, userId: string | null): void;
  stats(): { addresses: number; users: number };
}

type AddressCount = { total: number; unauthenticated: number };

const refusal = (message: string, reconnectAfterMs: number): CapRefusal => ({ reason: 'too_many_connections', message, reconnectAfterMs });
const over = (cap: number, count: number) => cap > 0 && count >= cap;

export function createConnectionCaps(options: ConnectionCapsOptions = DEFAULT_CONNECTION_CAPS): ConnectionCaps {
  const byAddress = new Map<string, AddressCount>();
  const byUser = new Map<string, number>();

  return {
    open(address) {
      const count = byAddress.get(address) ?? { total: 0, unauthenticated: 0 };
      if (over(options.perAddress, count.total)) {
        return refusal(`this address has ${count.total} connections to this server, the most it may have`, RECONNECT_AFTER_CONNECTION_CAP_MS);
      }
      if (over(options.unauthenticatedPerAddress, count.unauthenticated)) {
        return refusal(`this address has ${count.unauthenticated} connections waiting for their handshake, the most it may have`, RECONNECT_AFTER_HANDSHAKE_CAP_MS);
      }
      count.total++;
      count.unauthenticated++;
      byAddress.set(address, count);
      return null;
    },

    authenticate(address, userId) {
      const users = byUser.get(userId) ?? 0;
      if (over(options.perUser, users)) {
        return refusal(`this user has ${users} connections to this server, the most it may have`, RECONNECT_AFTER_CONNECTION_CAP_MS);
      }
      byUser.set(userId, users + 1);
      const count = byAddress.get(address);
      if (count !== undefined) count.unauthenticated--;
      return null;
    },

    close(address, userId) {
      const count = byAddress.get(address);
      if (count !== undefined) {
        count.total--;
        if (userId === null) count.unauthenticated--;
        if (count.total <= 0) byAddress.delete(address);
      }
      if (userId !== null) {
        const users = (byUser.get(userId) ?? 1) - 1;
        if (users <= 0) byUser.delete(userId);
        else byUser.set(userId, users);
      }
    },

    stats: () => ({ addresses: byAddress.size, users: byUser.size }),
  };
}
