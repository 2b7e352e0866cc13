/**
 * The spec's RoomEventFilter as /messages and /context take it: a JSON
 * object in the `filter` query parameter. Type, sender and `contains_url`
 * conditions become SQL (storage/timeline.ts), so pages stay full; the same
 * conditions are checked in memory for state lists.
 */
import { MatrixError } from '../../matrix-error.js';
import type { EventSqlFilter } from '../../storage/timeline.js';

export interface RoomEventFilter extends EventSqlFilter {
  limit?: number;
  rooms?: string[];
  notRooms?: string[];
  lazyLoadMembers: boolean;
  includeRedundantMembers: boolean;
}

function invalid(message: string): MatrixError {
  return new MatrixError(400, 'M_INVALID_PARAM', message);
}

function stringList(obj: Record<string, unknown>, key: string): string[] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw invalid(`filter.${key} must be a list of strings`);
  return v as string[];
}

function bool(obj: Record<string, unknown>, key: string): boolean | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalid(`filter.${key} must be a boolean`);
  return v;
}

/** Parses the `filter` query parameter: 400 M_NOT_JSON when it is not JSON, M_INVALID_PARAM when a field has the wrong shape. */
export function parseRoomEventFilter(raw: string | undefined): RoomEventFilter | undefined {
  if (raw === undefined || raw === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new MatrixError(400, 'M_NOT_JSON', 'Query parameter filter must be a valid JSON object');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new MatrixError(400, 'M_NOT_JSON', 'Query parameter filter must be a valid JSON object');
  const o = parsed as Record<string, unknown>;
  const f: RoomEventFilter = { lazyLoadMembers: bool(o, 'lazy_load_members') ?? false, includeRedundantMembers: bool(o, 'include_redundant_members') ?? false };
  const types = stringList(o, 'types');
  if (types !== undefined) f.types = types;
  const notTypes = stringList(o, 'not_types');
  if (notTypes !== undefined) f.notTypes = notTypes;
  const senders = stringList(o, 'senders');
  if (senders !== undefined) f.senders = senders;
  const notSenders = stringList(o, 'not_senders');
  if (notSenders !== undefined) f.notSenders = notSenders;
  const rooms = stringList(o, 'rooms');
  if (rooms !== undefined) f.rooms = rooms;
  const notRooms = stringList(o, 'not_rooms');
  if (notRooms !== undefined) f.notRooms = notRooms;
  const containsUrl = bool(o, 'contains_url');
  if (containsUrl !== undefined) f.containsUrl = containsUrl;
  if (o['limit'] !== undefined && o['limit'] !== null) {
    const l = o['limit'];
    if (typeof l !== 'number' || !Number.isInteger(l) || l < 1) throw invalid('filter.limit must be an integer greater than 0');
    f.limit = l;
  }
  return f;
}

/** Whether the filter lets a room through at all. */
export function roomAllowed(f: RoomEventFilter | undefined, roomId: string): boolean {
  if (!f) return true;
  if (f.notRooms?.includes(roomId)) return false;
  return f.rooms === undefined || f.rooms.includes(roomId);
}

function globMatch(glob: string, s: string): boolean {
  if (!glob.includes('*')) return glob === s;
  const re = new RegExp(`^${glob.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  return re.test(s);
}

/** The filter's type, sender and contains_url conditions, checked in memory. */
export function eventMatches(f: EventSqlFilter | undefined, e: { type: string; sender: string; json: Record<string, unknown> }): boolean {
  if (!f) return true;
  if (f.notTypes?.some((t) => globMatch(t, e.type))) return false;
  if (f.types !== undefined && !f.types.some((t) => globMatch(t, e.type))) return false;
  if (f.notSenders?.includes(e.sender)) return false;
  if (f.senders !== undefined && !f.senders.includes(e.sender)) return false;
  if (f.containsUrl !== undefined) {
    const content = e.json['content'] as Record<string, unknown> | undefined;
    if ((typeof content?.['url'] === 'string') !== f.containsUrl) return false;
  }
  return true;
}
