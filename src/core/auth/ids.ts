/**
 * Identifier helpers the auth rules need: the server part of a user, room or
 * (v1/v2) event id, and the user ID validity test applied to power level
 * `users` keys and v12 `additional_creators`.
 */

/** The part after the first `:` (server names may carry a port), or undefined. */
export function domainOf(id: string): string | undefined {
  const i = id.indexOf(':');
  return i < 0 ? undefined : id.slice(i + 1);
}

/**
 * Whether `s` is a user ID the auth rules accept: `@`, a localpart, `:`, a
 * non-empty server name. Localparts follow the spec's *historical* grammar
 * (any code points except `:` and NUL, possibly empty), because rooms hold
 * such users and servers must still accept them.
 */
export function isValidUserId(s: string): boolean {
  if (s.length < 3 || s.charCodeAt(0) !== 0x40 /* @ */) return false;
  const colon = s.indexOf(':');
  if (colon < 0 || colon === s.length - 1) return false;
  return !s.includes('\u0000');
}
