/**
 * The outbound address policy: IP literal parsing, CIDR matching (IPv4,
 * IPv6, IPv4-mapped IPv6), the whitelist winning over the blacklist,
 * Synapse's default ip_range_blacklist, the config keys, and a host name
 * whose resolution holds one blocked address among good ones.
 */
import { describe, expect, it } from 'vitest';
import type { HomeserverConfig } from '../../src/config/types.js';
import { BlockedAddressError, screenAddresses } from '../../src/services/outbound/guarded-agent.js';
import { AddressPolicy, DEFAULT_IP_RANGE_BLACKLIST, IpRangeSet, URL_PREVIEW_KEYS, parseIp } from '../../src/services/outbound/ip-ranges.js';
import { outboundPolicy, outboundRanges } from '../../src/services/outbound/outbound-config.js';

describe('IP ranges', () => {
  it('parses IPv4, IPv6 (compressed, bracketed, with an IPv4 tail or a zone) and refuses host names', () => {
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, value: 0x0a010203n });
    expect(parseIp('::1')).toEqual({ family: 6, value: 1n });
    expect(parseIp('[2001:db8::1]')).toEqual({ family: 6, value: 0x20010db8000000000000000000000001n });
    expect(parseIp('::ffff:127.0.0.1')).toEqual({ family: 6, value: 0xffff7f000001n });
    expect(parseIp('fe80::1%eth0')?.family).toBe(6);
    for (const bad of ['localhost', '1.2.3', '256.1.1.1', '1::2::3', 'example.org', '']) expect(parseIp(bad), bad).toBeUndefined();
  });

  it('matches CIDR ranges and single addresses', () => {
    const set = new IpRangeSet(['127.0.0.0/8', '192.168.0.0/16', '10.0.0.1', 'fc00::/7', '::1/128']);
    for (const yes of ['127.0.0.1', '127.255.255.254', '192.168.4.4', '10.0.0.1', 'fd12::1', '::1']) expect(set.contains(yes), yes).toBe(true);
    for (const no of ['128.0.0.1', '192.169.0.1', '10.0.0.2', 'fe00::1', '::2', '8.8.8.8']) expect(set.contains(no), no).toBe(false);
  });

  it('checks an IPv4-mapped IPv6 address as the IPv4 address it carries', () => {
    const set = new IpRangeSet(['127.0.0.0/8']);
    expect(set.contains('::ffff:127.0.0.1')).toBe(true);
    expect(set.contains('::ffff:7f00:1')).toBe(true);
    expect(set.contains('::ffff:8.8.8.8')).toBe(false);
  });

  it('refuses entries that are not ranges, naming them', () => {
    expect(() => new IpRangeSet(['10.0.0.0/33'], 'url_preview_ip_range_blacklist')).toThrow(/url_preview_ip_range_blacklist: "10.0.0.0\/33"/);
    expect(() => new IpRangeSet(['example.org'])).toThrow(/not an IP address/);
    expect(() => new IpRangeSet(['::/129'])).toThrow();
  });

  it('the policy: blacklisted unless whitelisted; unspecified addresses always refused; non-IPs refused', () => {
    const p = new AddressPolicy(['127.0.0.0/8'], ['127.0.0.1']);
    expect(p.allows('127.0.0.1')).toBe(true);
    expect(p.allows('127.0.0.2')).toBe(false);
    expect(p.allows('93.184.216.34')).toBe(true);
    expect(p.allows('0.0.0.0')).toBe(false);
    expect(p.allows('::')).toBe(false);
    expect(p.allows('localhost')).toBe(false);
    expect(new AddressPolicy([], ['0.0.0.0/0']).allows('0.0.0.0')).toBe(false);
  });
});

describe('the outbound policy', () => {
  it('matches IPv6 ranges at any prefix, and does not mix families', () => {
    const set = new IpRangeSet(['2001:db8::/32', 'fe80::/10', '10.0.0.0/8']);
    expect(set.contains('2001:db8:ffff::1')).toBe(true);
    expect(set.contains('2001:db9::1')).toBe(false);
    expect(set.contains('febf::1')).toBe(true);
    expect(set.contains('fec0::1')).toBe(false);
    // An IPv6 address whose low 32 bits spell 10.x.x.x is not in an IPv4 range unless it is IPv4-mapped.
    expect(set.contains('::a00:1')).toBe(false);
    expect(set.contains('::ffff:10.0.0.1')).toBe(true);
  });

  it('the whitelist wins over the blacklist, in the IPv4-mapped spelling too', () => {
    const p = new AddressPolicy(['127.0.0.0/8', '::1/128'], ['127.0.0.1', '::1']);
    expect(p.allows('127.0.0.1')).toBe(true);
    expect(p.allows('::ffff:127.0.0.1')).toBe(true);
    expect(p.allows('::1')).toBe(true);
    expect(p.allows('127.0.0.2')).toBe(false);
    expect(p.allows('::ffff:127.0.0.2')).toBe(false);
    expect(p.allows('[::ffff:7f00:2]')).toBe(false);
  });

  it("Synapse's default blacklist refuses private, loopback, link-local and multicast addresses, IPv4-mapped ones too", () => {
    const p = new AddressPolicy(DEFAULT_IP_RANGE_BLACKLIST, []);
    for (const no of [
      '127.0.0.1',
      '10.1.2.3',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      '169.254.169.254',
      '224.0.0.1',
      '::1',
      'fe80::1',
      'fd00::1',
      'ff02::1',
      '::ffff:192.168.1.1',
      '::ffff:169.254.169.254',
    ]) {
      expect(p.allows(no), no).toBe(false);
    }
    for (const yes of ['8.8.8.8', '172.32.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) expect(p.allows(yes), yes).toBe(true);
  });

  it('reads ip_range_blacklist / ip_range_whitelist with Synapse defaults, naming the key of a bad entry', () => {
    const config = (raw: Record<string, unknown>) => ({ raw }) as unknown as HomeserverConfig;
    expect(outboundRanges(config({}))).toEqual({ blacklist: [...DEFAULT_IP_RANGE_BLACKLIST], whitelist: [] });
    expect(outboundRanges(config({ ip_range_blacklist: [], ip_range_whitelist: ['10.0.0.0/8'] }))).toEqual({ blacklist: [], whitelist: ['10.0.0.0/8'] });
    expect(() => outboundRanges(config({ ip_range_whitelist: '10.0.0.0/8' }))).toThrow(/ip_range_whitelist: expected a list/);
    expect(() => outboundPolicy({ blacklist: ['10.0.0.0/40'], whitelist: [] })).toThrow(/^ip_range_blacklist: "10.0.0.0\/40"/);
    expect(() => new AddressPolicy([], ['nope'], URL_PREVIEW_KEYS)).toThrow(/^url_preview_ip_range_whitelist: "nope"/);
    // An empty blacklist still refuses the unspecified addresses.
    expect(outboundPolicy({ blacklist: [], whitelist: [] }).allows('0.0.0.0')).toBe(false);
  });

  it('a host name is refused when any one of its addresses is blocked, and answers them all otherwise', () => {
    const p = new AddressPolicy(DEFAULT_IP_RANGE_BLACKLIST, []);
    const good = [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ];
    expect(screenAddresses('example.org', good, p)).toEqual(good);
    const mixed = screenAddresses('rebind.example', [...good, { address: '10.0.0.5', family: 4 }], p);
    expect(mixed).toBeInstanceOf(BlockedAddressError);
    expect((mixed as Error).message).toBe('the address of rebind.example is refused by ip_range_blacklist');
    expect(screenAddresses('v6.example', [good[0]!, { address: '::ffff:127.0.0.1', family: 6 }], p)).toBeInstanceOf(BlockedAddressError);
    expect((screenAddresses('empty.example', [], p) as Error & { code?: string }).code).toBe('ENOTFOUND');
  });
});
