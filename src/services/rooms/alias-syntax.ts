/**
 * Room alias syntax: parsing `#localpart:server`, and the checks Synapse
 * makes on a new alias (no whitespace or ':' in the localpart, at most 255
 * bytes in all).
 */
import { MatrixError } from '../../matrix-error.js';

/** Synapse's MAX_ALIAS_LENGTH. */
export const MAX_ALIAS_LENGTH = 255;

const SERVER_NAME = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$/;

export interface ParsedAlias {
  alias: string;
  localpart: string;
  server: string;
}

/** `#localpart:server` with a valid server name, or undefined. */
export function parseRoomAlias(s: string): ParsedAlias | undefined {
  if (!s.startsWith('#')) return undefined;
  const colon = s.indexOf(':');
  if (colon < 2) return undefined;
  const localpart = s.slice(1, colon);
  const server = s.slice(colon + 1);
  if (!SERVER_NAME.test(server) || s.includes('\u0000')) return undefined;
  return { alias: s, localpart, server };
}

export function parseRoomAliasOrThrow(s: string): ParsedAlias {
  const p = parseRoomAlias(s);
  if (!p) throw new MatrixError(400, 'M_INVALID_PARAM', 'Room alias invalid');
  return p;
}

export function checkLocalpart(localpart: string): void {
  if (/\s/u.test(localpart)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid characters in room alias');
  if (localpart.includes(':')) throw new MatrixError(400, 'M_INVALID_PARAM', "Invalid character in room alias localpart: ':'.");
}

export function checkLength(alias: string): void {
  if (Buffer.byteLength(alias) > MAX_ALIAS_LENGTH) throw new MatrixError(400, 'M_INVALID_PARAM', `Can't create aliases longer than ${MAX_ALIAS_LENGTH} characters`);
}

/** The full local alias for createRoom's `room_alias_name` (a localpart, not `#name:server`). */
export function localAliasFromName(name: string, serverName: string): string {
  if (name.includes(':')) {
    throw new MatrixError(400, 'M_INVALID_PARAM', "':' is not permitted in the room alias name. Please note this expects a local part — 'wombat', not '#wombat:example.com'.");
  }
  if (name === '' || name.includes('\u0000')) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid room alias name');
  checkLocalpart(name);
  const alias = `#${name}:${serverName}`;
  checkLength(alias);
  return alias;
}
