import { describe, expect, it } from 'vitest';
import { clientKey } from '../src/client-key.js';

describe('clientKey', () => {
  it('keys an IPv4 address as is, an IPv4-mapped one by its IPv4 address', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });
  it('keys an IPv6 address by its /64, however it is written, so rotating addresses in it is one client', () => {
    expect(clientKey('2001:db8:85a3:7:1:2:3:4')).toBe('2001:db8:85a3:7::/64');
    expect(clientKey('2001:0DB8:85a3:0007:ffff::1')).toBe('2001:db8:85a3:7::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('2001:db8:0:1::')).toBe('2001:db8:0:1::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('2001:db8:0:2::1')).not.toBe(clientKey('2001:db8:0:1::1'));
  });
});
