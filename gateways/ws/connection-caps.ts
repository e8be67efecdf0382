import {
  MAX_CONNECTIONS_PER_ADDRESS,
  MAX_CONNECTIONS_PER_USER,
  MAX_UNAUTHENTICATED_PER_ADDRESS,
  RECONNECT_AFTER_CONNECTION_CAP_MS,
  RECONNECT_AFTER_HANDSHAKE_CAP_MS,
} from './protocol/index.js';

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

export interface ConnectionCaps {
  /** A socket opened from `address`: counted and null, or the refusal (then nothing is counted). */
  open(key: object, address: string): CapRefusal | null;
  /** Its Hello was accepted for `userId`: counted under the user (and no longer as a handshake) and null, or the refusal. */
  authenticate(key: object, userId: string): CapRefusal | null;
  /** The socket closed: whatever was counted for it is released (idempotent). */
  close(key: object): void;
  stats(): { addresses: number; users: number };
}

type Counted = { address: string; userId: string | null };
type AddressCount = { total: number; unauthenticated: number };

const refusal = (message: string, reconnectAfterMs: number): CapRefusal => ({ reason: 'too_many_connections', message, reconnectAfterMs });
const over = (cap: number, count: number) => cap > 0 && count >= cap;

export function createConnectionCaps(options: ConnectionCapsOptions = DEFAULT_CONNECTION_CAPS): ConnectionCaps {
  const counted = new Map<object, Counted>();
  const byAddress = new Map<string, AddressCount>();
  const byUser = new Map<string, number>();

  return {
    open(key, address) {
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
      counted.set(key, { address, userId: null });
      return null;
    },

    authenticate(key, userId) {
      const entry = counted.get(key);
      if (entry === undefined || entry.userId !== null) return null;
      const users = byUser.get(userId) ?? 0;
      if (over(options.perUser, users)) {
        return refusal(`this user has ${users} connections to this server, the most it may have`, RECONNECT_AFTER_CONNECTION_CAP_MS);
      }
      byUser.set(userId, users + 1);
      entry.userId = userId;
      const count = byAddress.get(entry.address);
      if (count !== undefined) count.unauthenticated--;
      return null;
    },

    close(key) {
      const entry = counted.get(key);
      if (entry === undefined) return;
      counted.delete(key);
      const count = byAddress.get(entry.address);
      if (count !== undefined) {
        count.total--;
        if (entry.userId === null) count.unauthenticated--;
        if (count.total <= 0) byAddress.delete(entry.address);
      }
      if (entry.userId !== null) {
        const users = (byUser.get(entry.userId) ?? 1) - 1;
        if (users <= 0) byUser.delete(entry.userId);
        else byUser.set(entry.userId, users);
      }
    },

    stats: () => ({ addresses: byAddress.size, users: byUser.size }),
  };
}
