/**
 * `ip_range_blacklist` / `ip_range_whitelist` from homeserver.yaml, as
 * Synapse reads them: the ranges no outbound request (push gateways; the
 * federation client next) may reach unless whitelisted. An absent
 * blacklist is Synapse's default list of private ranges; an absent
 * whitelist is empty. A bad value throws, naming the key.
 */
import type { HomeserverConfig } from '../../config/types.js';
import { AddressPolicy, DEFAULT_IP_RANGE_BLACKLIST, OUTBOUND_KEYS } from './ip-ranges.js';

export interface OutboundRanges {
  blacklist: string[];
  whitelist: string[];
}

function strList(v: unknown, key: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${key}: expected a list of IP ranges`);
  return v as string[];
}

export function outboundRanges(config: HomeserverConfig): OutboundRanges {
  return {
    blacklist: strList(config.raw['ip_range_blacklist'], OUTBOUND_KEYS.blacklist) ?? [...DEFAULT_IP_RANGE_BLACKLIST],
    whitelist: strList(config.raw['ip_range_whitelist'], OUTBOUND_KEYS.whitelist) ?? [],
  };
}

/** The policy of those ranges. */
export function outboundPolicy(ranges: OutboundRanges): AddressPolicy {
  return new AddressPolicy(ranges.blacklist, ranges.whitelist, OUTBOUND_KEYS);
}
