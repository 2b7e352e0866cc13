/**
 * Server ACLs (`m.room.server_acl`): whether a server may take part in a
 * room, by the spec's rules, applied in this order to the server name
 * without its port:
 * 1. no ACL event in the room state: allowed (the caller passes `undefined`);
 * 2. an IP literal (IPv4, or IPv6 in brackets) when `allow_ip_literals` is
 *    `false`: denied (a missing or non-boolean value counts as `true`);
 * 3. matching an entry of `deny`: denied;
 * 4. matching an entry of `allow`: allowed;
 * 5. otherwise denied: a missing `allow` allows no one.
 * Entries are globs (`*` any run of characters, `?` exactly one), matched
 * against the whole name, case-insensitively. As Synapse reads the content:
 * a list that is not an array counts as empty and entries that are not
 * strings are ignored.
 */
import { isJsonObject } from './json-values.js';

/** `aclContent` is the ACL event's content, or `undefined` when the room has no ACL. */
export function serverAllowedByAcl(aclContent: unknown, serverName: string): boolean {
  if (aclContent === undefined) return true;
  const content = isJsonObject(aclContent) ? aclContent : {};
  const host = hostOf(serverName);
  const allowIpLiterals = typeof content['allow_ip_literals'] === 'boolean' ? content['allow_ip_literals'] : true;
  if (!allowIpLiterals && isIpLiteral(host)) return false;
  if (globsOf(content['deny']).some((g) => globMatches(g, host))) return false;
  return globsOf(content['allow']).some((g) => globMatches(g, host));
}

/** The server name without its port: `[::1]:8448` → `[::1]`, `example.org:8448` → `example.org`. */
export function hostOf(serverName: string): string {
  if (serverName.startsWith('[')) {
    const end = serverName.indexOf(']');
    return end < 0 ? serverName : serverName.slice(0, end + 1);
  }
  const colon = serverName.indexOf(':');
  // More than one colon: an IPv6 address without brackets (not a valid server name), kept whole.
  if (colon < 0 || serverName.indexOf(':', colon + 1) >= 0) return serverName;
  return serverName.slice(0, colon);
}

/** Whether a host (no port) is an IP address literal: the spec's IPv4address, or IPv6 (bracketed, or bare). */
export function isIpLiteral(host: string): boolean {
  return host.startsWith('[') || /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(host) || host.includes(':');
}

function globsOf(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((g): g is string => typeof g === 'string') : [];
}

/**
 * Whether the glob matches all of `text`, case-insensitively, by code
 * point. Linear backtracking on the last `*` only (no regular expression, so
 * no pathological pattern).
 */
export function globMatches(glob: string, text: string): boolean {
  const p = [...glob.toLowerCase()];
  const t = [...text.toLowerCase()];
  let i = 0;
  let j = 0;
  let star = -1;
  let resume = 0;
  while (j < t.length) {
    if (i < p.length && (p[i] === '?' || (p[i] !== '*' && p[i] === t[j]))) {
      i++;
      j++;
    } else if (i < p.length && p[i] === '*') {
      star = i++;
      resume = j;
    } else if (star >= 0) {
      i = star + 1;
      j = ++resume;
    } else {
      return false;
    }
  }
  while (i < p.length && p[i] === '*') i++;
  return i === p.length;
}
