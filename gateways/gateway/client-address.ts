import { BlockList, isIP } from 'node:net';

/**
 * The address a WebSocket client connects from, for the per-address caps (connection-caps.ts).
 *
 * Without trusted proxies (the default) it is the TCP peer. Behind reverse proxies, every client
 * would share the proxy's address, so a deployment names its proxies (TRUSTED_PROXIES: IP
 * addresses or CIDR ranges): for a connection from one of them, the client is the right-most
 * X-Forwarded-For entry that is not a trusted proxy itself (entries left of it were written by the
 * client and prove nothing). A connection from anywhere else keeps its peer address, whatever
 * X-Forwarded-For it sends.
 */
export type ClientAddressOf = (peer: string, forwardedFor: string) => string;

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`; lower case otherwise. */
export function normalizeAddress(address: string): string {
  const trimmed = address.trim().toLowerCase();
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(trimmed);
  return mapped !== null && isIP(mapped[1]!) === 4 ? mapped[1]! : trimmed;
}

export function createClientAddressOf(trustedProxies: readonly string[]): ClientAddressOf {
  if (trustedProxies.length === 0) return (peer) => normalizeAddress(peer);
  const trusted = new BlockList();
  for (const entry of trustedProxies) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) trusted.addAddress(address, family);
    else trusted.addSubnet(address, Number(prefix), family);
  }
  const isTrusted = (address: string) => {
    const family = isIP(address);
    return family !== 0 && trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
  return (peer, forwardedFor) => {
    let client = normalizeAddress(peer);
    if (!isTrusted(client)) return client;
    const hops = forwardedFor.split(',').map(normalizeAddress).filter((hop) => hop !== '');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      // Garbage where an address should be: the chain cannot be followed past it.
      if (isIP(hop) === 0) return client;
      client = hop;
      if (!isTrusted(hop)) return client;
    }
    return client;
  };
}
