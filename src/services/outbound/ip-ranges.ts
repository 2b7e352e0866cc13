/**
 * IP addresses and CIDR ranges, and the address policy every outbound
 * request obeys: `ip_range_blacklist` / `ip_range_whitelist` (push
 * gateways; federation next) and `url_preview_ip_range_blacklist` /
 * `_whitelist` (URL previews), as Synapse applies them.
 *
 * Addresses are compared as integers. An IPv4-mapped IPv6 address
 * (`::ffff:127.0.0.1`) is also checked as the IPv4 address it carries, in
 * the blacklist and the whitelist alike, so an IPv4 range covers its IPv6
 * spelling as Synapse's range sets do.
 */
import { isIP } from 'node:net';

export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

interface Range {
  family: 4 | 6;
  network: bigint;
  prefix: number;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(input: string): bigint | undefined {
  let s = input;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let v = 0n;
  for (const g of all) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

/** An IP literal (IPv6 possibly in brackets); undefined for anything else, host names included. */
export function parseIp(s: string): IpAddress | undefined {
  const bare = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  const kind = isIP(bare);
  if (kind === 4) {
    const v = parseV4(bare);
    return v === undefined ? undefined : { family: 4, value: v };
  }
  if (kind === 6) {
    const v = parseV6(bare);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  return undefined;
}

const V4_MAPPED_PREFIX = 0xffffn << 32n;

/** The IPv4 address inside an IPv4-mapped IPv6 one (::ffff:a.b.c.d). */
function unmapped(a: IpAddress): IpAddress | undefined {
  if (a.family === 6 && a.value >> 32n === 0xffffn) return { family: 4, value: a.value - V4_MAPPED_PREFIX };
  return undefined;
}

function parseRange(s: string): Range | undefined {
  const slash = s.indexOf('/');
  const addr = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return undefined;
  const bits = addr.family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) return undefined;
    prefix = Number(p);
  }
  const shift = BigInt(bits - prefix);
  return { family: addr.family, network: (addr.value >> shift) << shift, prefix };
}

export class IpRangeSet {
  private readonly ranges: Range[];

  /** Throws, naming the entry, for anything that is not an address or CIDR range. */
  constructor(entries: readonly string[], what = 'IP range') {
    this.ranges = entries.map((e) => {
      const r = parseRange(e.trim());
      if (!r) throw new Error(`${what}: ${JSON.stringify(e)} is not an IP address or CIDR range`);
      return r;
    });
  }

  get size(): number {
    return this.ranges.length;
  }

  contains(address: IpAddress | string): boolean {
    const a = typeof address === 'string' ? parseIp(address) : address;
    if (!a) return false;
    const candidates = [a];
    const v4 = unmapped(a);
    if (v4) candidates.push(v4);
    return candidates.some((c) =>
      this.ranges.some((r) => {
        if (r.family !== c.family) return false;
        const shift = BigInt((r.family === 4 ? 32 : 128) - r.prefix);
        return (c.value >> shift) << shift === r.network;
      }),
    );
  }
}

/**
 * Synapse's default `ip_range_blacklist` (used when the key is absent):
 * loopback, private, carrier-grade NAT, link-local, documentation and
 * benchmarking, multicast and the IPv6 equivalents.
 */
export const DEFAULT_IP_RANGE_BLACKLIST: readonly string[] = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '192.0.0.0/24',
  '169.254.0.0/16',
  '192.88.99.0/24',
  '198.18.0.0/15',
  '192.0.2.0/24',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '::1/128',
  'fe80::/10',
  'fc00::/7',
  '2001:db8::/32',
  'ff00::/8',
  'fec0::/10',
];

/** The config keys a policy was read from, for its error messages. */
export interface PolicyKeys {
  blacklist: string;
  whitelist: string;
}

export const OUTBOUND_KEYS: PolicyKeys = { blacklist: 'ip_range_blacklist', whitelist: 'ip_range_whitelist' };
export const URL_PREVIEW_KEYS: PolicyKeys = { blacklist: 'url_preview_ip_range_blacklist', whitelist: 'url_preview_ip_range_whitelist' };

/**
 * An address policy: an address is refused when the blacklist holds it and
 * the whitelist does not (the whitelist wins). The unspecified addresses
 * (0.0.0.0, ::) are always refused, as Synapse adds them to every
 * blacklist; anything that is not an IP literal is refused.
 */
export class AddressPolicy {
  private readonly black: IpRangeSet;
  private readonly white: IpRangeSet;
  private readonly unspecified = new IpRangeSet(['0.0.0.0', '::']);

  /** Throws, naming the key and the entry, for an entry that is not an address or CIDR range. */
  constructor(
    blacklist: readonly string[],
    whitelist: readonly string[],
    readonly keys: PolicyKeys = OUTBOUND_KEYS,
  ) {
    this.black = new IpRangeSet(blacklist, keys.blacklist);
    this.white = new IpRangeSet(whitelist, keys.whitelist);
  }

  /** Whether the address may be connected to. */
  allows(address: string): boolean {
    const a = parseIp(address);
    if (!a || this.unspecified.contains(a)) return false;
    return !this.black.contains(a) || this.white.contains(a);
  }
}
