import { describe, expect, it } from 'vitest';
import { createClientAddressOf, normalizeAddress } from './client-address.js';

describe('client address', () => {
  it('is the TCP peer without trusted proxies, whatever X-Forwarded-For says', () => {
    const of = createClientAddressOf([]);
    expect(of('192.0.2.10', '203.0.113.1')).toBe('192.0.2.10');
    expect(of('::FFFF:192.0.2.10', '')).toBe('192.0.2.10');
  });

  it('writes IPv4 peers of a dual-stack socket as IPv4', () => {
    expect(normalizeAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(normalizeAddress('0000:0000:0000:0000:0000:ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(normalizeAddress('2001:DB8::1')).toBe('2001:db8::1');
  });

  it('behind trusted proxies, is the right-most X-Forwarded-For entry that is not a trusted proxy', () => {
    const of = createClientAddressOf(['10.0.0.0/8', '192.0.2.1', 'fd00::/8']);
    expect(of('10.1.1.1', '203.0.113.7')).toBe('203.0.113.7');
    expect(of('10.1.1.1', '198.51.100.1, 203.0.113.7, 10.2.2.2')).toBe('203.0.113.7');
    expect(of('::ffff:192.0.2.1', '203.0.113.7')).toBe('203.0.113.7');
    expect(of('fd00::5', '2001:db8::9')).toBe('2001:db8::9');
    // From a peer that is not a proxy, the header is the client's own claim: ignored.
    expect(of('198.51.100.9', '203.0.113.7')).toBe('198.51.100.9');
  });

  it('stops at what it cannot read, and falls back to the last trusted hop when every entry is a proxy or missing', () => {
    const of = createClientAddressOf(['10.0.0.0/8']);
    expect(of('10.1.1.1', '')).toBe('10.1.1.1');
    expect(of('10.1.1.1', '10.3.3.3')).toBe('10.3.3.3');
    expect(of('10.1.1.1', 'unknown, 10.3.3.3')).toBe('10.3.3.3');
    expect(of('10.1.1.1', '203.0.113.7:443')).toBe('10.1.1.1');
  });
});
