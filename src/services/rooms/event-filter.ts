/**
 * Filters (the spec's Filter / RoomFilter / RoomEventFilter / EventFilter),
 * one implementation for every place that takes one: validation of what a
 * client uploads or passes inline to /sync, the `filter` query parameter of
 * /messages and /context, the parsed form both work with, and matching.
 *
 * Validation follows Synapse's filter schema: unknown keys are allowed (for
 * forward compatibility); known keys must have the right type; `senders`
 * must be user ids and `rooms` room ids. A bad filter is 400
 * M_INVALID_PARAM naming the offending key. The /messages and /context
 * parameter is read as Synapse reads it there (it does not apply the
 * schema): a null value stands for an absent key, ids are not checked, and
 * `limit` starts at 1; it must still be a JSON object (else M_NOT_JSON) with
 * well-typed known keys.
 *
 * Type and sender conditions of timeline filters also run as SQL
 * (storage/event-filter-sql.ts), so pages stay full; eventMatches checks the
 * same conditions in memory.
 *
 * Type patterns: `*` matches any sequence of characters, anywhere in the
 * pattern, as the spec says (Synapse only honours a trailing `*`; every
 * pattern it accepts means the same here).
 */
import { MatrixError } from '../../matrix-error.js';
import { isJsonObject } from '../../core/json-values.js';

export interface EventFilter {
  limit?: number;
  types?: string[];
  notTypes: string[];
  senders?: string[];
  notSenders: string[];
}

export interface RoomEventFilter extends EventFilter {
  rooms?: string[];
  notRooms: string[];
  containsUrl?: boolean;
  lazyLoadMembers: boolean;
  includeRedundantMembers: boolean;
  unreadThreadNotifications: boolean;
}

export interface SyncFilter {
  eventFields?: string[];
  eventFormat: 'client' | 'federation';
  presence: EventFilter;
  accountData: EventFilter;
  room: {
    rooms?: string[];
    notRooms: string[];
    includeLeave: boolean;
    timeline: RoomEventFilter;
    state: RoomEventFilter;
    ephemeral: RoomEventFilter;
    accountData: RoomEventFilter;
  };
}

/** Synapse's default timeline limit when a filter names none. */
export const DEFAULT_TIMELINE_LIMIT = 10;

/** Synapse's `filter_timeline_limit` default: the most events a timeline filter may ask for. */
export const DEFAULT_FILTER_TIMELINE_LIMIT = 100;

type Json = Record<string, unknown>;

function invalid(path: string, what: string): MatrixError {
  return new MatrixError(400, 'M_INVALID_PARAM', `Invalid filter: '${path}' ${what}`);
}

const USER_ID_RE = /^@[^:]+:.+$/;

/** Room ids as Synapse accepts them: `!opaque:server`, or (v12) `!` + a hash with no server part. */
function isRoomId(s: string): boolean {
  return s.length >= 2 && s.length <= 255 && s[0] === '!' && !s.includes('\u0000');
}

const isUserId = (s: string) => USER_ID_RE.test(s);

/**
 * How strictly a filter is read: `schema` for uploaded filters and /sync
 * (Synapse's filter schema), `query` for the /messages and /context
 * parameter (null is absent, ids unchecked, limit from 1).
 */
type Mode = 'schema' | 'query';

function checkStringArray(o: Json, key: string, path: string, mode: Mode, item?: (s: string) => boolean, itemWhat = 'a string'): void {
  const v = o[key];
  if (v === undefined || (v === null && mode === 'query')) return;
  if (!Array.isArray(v)) throw invalid(`${path}${key}`, 'must be an array');
  for (const x of v) {
    if (typeof x !== 'string') throw invalid(`${path}${key}`, 'must hold strings only');
    if (x.includes('\u0000')) throw invalid(`${path}${key}`, 'may not contain U+0000');
    if (item && mode === 'schema' && !item(x)) throw invalid(`${path}${key}`, `must hold only ${itemWhat}s (got ${JSON.stringify(x).slice(0, 100)})`);
  }
}

function checkBool(o: Json, key: string, path: string, mode: Mode): void {
  const v = o[key];
  if (v === undefined || (v === null && mode === 'query')) return;
  if (typeof v !== 'boolean') throw invalid(`${path}${key}`, 'must be true or false');
}

function checkEventFilter(v: unknown, path: string, mode: Mode): void {
  if (v === undefined) return;
  if (!isJsonObject(v)) throw invalid(path.slice(0, -1), 'must be an object');
  const l = v['limit'];
  if (l !== undefined && !(l === null && mode === 'query')) {
    const min = mode === 'query' ? 1 : 0;
    if (typeof l !== 'number' || !Number.isInteger(l) || l < min) throw invalid(`${path}limit`, min === 0 ? 'must be a non-negative integer' : 'must be an integer greater than 0');
  }
  checkStringArray(v, 'types', path, mode);
  checkStringArray(v, 'not_types', path, mode);
  checkStringArray(v, 'senders', path, mode, isUserId, 'user id');
  checkStringArray(v, 'not_senders', path, mode, isUserId, 'user id');
}

function checkRoomEventFilter(v: unknown, path: string, mode: Mode): void {
  checkEventFilter(v, path, mode);
  if (v === undefined || !isJsonObject(v)) return;
  checkStringArray(v, 'rooms', path, mode, isRoomId, 'room id');
  checkStringArray(v, 'not_rooms', path, mode, isRoomId, 'room id');
  for (const k of ['contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications']) checkBool(v, k, path, mode);
}

/** Throws 400 M_INVALID_PARAM unless `json` is a valid filter definition. */
export function validateFilter(json: unknown): asserts json is Json {
  if (!isJsonObject(json)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid filter: must be a JSON object');
  checkStringArray(json, 'event_fields', '', 'schema');
  if (json['event_format'] !== undefined && json['event_format'] !== 'client' && json['event_format'] !== 'federation') {
    throw invalid('event_format', 'must be "client" or "federation"');
  }
  checkEventFilter(json['presence'], 'presence.', 'schema');
  checkEventFilter(json['account_data'], 'account_data.', 'schema');
  const room = json['room'];
  if (room !== undefined) {
    if (!isJsonObject(room)) throw invalid('room', 'must be an object');
    checkStringArray(room, 'rooms', 'room.', 'schema', isRoomId, 'room id');
    checkStringArray(room, 'not_rooms', 'room.', 'schema', isRoomId, 'room id');
    checkBool(room, 'include_leave', 'room.', 'schema');
    for (const k of ['timeline', 'state', 'ephemeral', 'account_data']) checkRoomEventFilter(room[k], `room.${k}.`, 'schema');
  }
}

/** Caps `room.timeline.limit` at the server's maximum, as Synapse does before storing or using a filter. */
export function capTimelineLimit(json: Json, max: number): Json {
  if (max < 0) return json;
  const room = json['room'];
  if (!isJsonObject(room)) return json;
  const timeline = room['timeline'];
  if (!isJsonObject(timeline) || typeof timeline['limit'] !== 'number' || timeline['limit'] <= max) return json;
  return { ...json, room: { ...room, timeline: { ...timeline, limit: max } } };
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? (v as string[]) : undefined;
}

function parseEventFilter(v: unknown): EventFilter {
  const o = isJsonObject(v) ? v : {};
  return {
    limit: typeof o['limit'] === 'number' ? o['limit'] : undefined,
    types: strings(o['types']),
    notTypes: strings(o['not_types']) ?? [],
    senders: strings(o['senders']),
    notSenders: strings(o['not_senders']) ?? [],
  };
}

function parseRoomEventFilter(v: unknown): RoomEventFilter {
  const o = isJsonObject(v) ? v : {};
  return {
    ...parseEventFilter(o),
    rooms: strings(o['rooms']),
    notRooms: strings(o['not_rooms']) ?? [],
    containsUrl: typeof o['contains_url'] === 'boolean' ? o['contains_url'] : undefined,
    lazyLoadMembers: o['lazy_load_members'] === true,
    includeRedundantMembers: o['include_redundant_members'] === true,
    unreadThreadNotifications: o['unread_thread_notifications'] === true || o['org.matrix.msc3773.unread_thread_notifications'] === true,
  };
}

/** The parsed form of a filter that passed validateFilter. */
export function parseFilter(json: Json): SyncFilter {
  const room = isJsonObject(json['room']) ? json['room'] : {};
  return {
    eventFields: strings(json['event_fields']),
    eventFormat: json['event_format'] === 'federation' ? 'federation' : 'client',
    presence: parseEventFilter(json['presence']),
    accountData: parseEventFilter(json['account_data']),
    room: {
      rooms: strings(room['rooms']),
      notRooms: strings(room['not_rooms']) ?? [],
      includeLeave: room['include_leave'] === true,
      timeline: parseRoomEventFilter(room['timeline']),
      state: parseRoomEventFilter(room['state']),
      ephemeral: parseRoomEventFilter(room['ephemeral']),
      accountData: parseRoomEventFilter(room['account_data']),
    },
  };
}

export const DEFAULT_FILTER: SyncFilter = parseFilter({});

/**
 * The `filter` query parameter of /messages and /context (a RoomEventFilter
 * as JSON): undefined when absent or empty, 400 M_NOT_JSON when it is not a
 * JSON object, M_INVALID_PARAM when a known key has the wrong type.
 */
export function parseRoomEventFilterParam(raw: string | undefined): RoomEventFilter | undefined {
  if (raw === undefined || raw === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!isJsonObject(parsed)) throw new MatrixError(400, 'M_NOT_JSON', 'Query parameter filter must be a valid JSON object');
  checkRoomEventFilter(parsed, '', 'query');
  return parseRoomEventFilter(parsed);
}

const globCache = new Map<string, RegExp>();

/** Whether an event type matches a filter pattern (`*` matches any sequence of characters). */
export function typeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  let re = globCache.get(pattern);
  if (!re) {
    re = new RegExp(
      `^${pattern
        .split('*')
        .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
      's',
    );
    if (globCache.size > 1000) globCache.clear();
    globCache.set(pattern, re);
  }
  return re.test(type);
}

/** Whether a room passes a room list (`rooms` / `not_rooms`); no filter lets every room through. */
export function roomAllowed(f: { rooms?: readonly string[]; notRooms?: readonly string[] } | undefined, roomId: string): boolean {
  if (!f) return true;
  if (f.notRooms?.includes(roomId)) return false;
  return f.rooms === undefined || f.rooms.includes(roomId);
}

/** What eventMatches reads of a filter (an EventFilter, a RoomEventFilter, or the SQL half of one). */
export interface MatchableFilter {
  types?: readonly string[];
  notTypes: readonly string[];
  senders?: readonly string[];
  notSenders: readonly string[];
  rooms?: readonly string[];
  notRooms?: readonly string[];
  containsUrl?: boolean;
}

/**
 * Whether an event (or account-data entry, or presence update) passes a
 * filter; no filter lets everything through. Rooms are checked only when
 * the event names one.
 */
export function eventMatches(f: MatchableFilter | undefined, e: { type: string; sender?: string; roomId?: string; content?: unknown }): boolean {
  if (!f) return true;
  if (f.notTypes.some((p) => typeMatches(p, e.type))) return false;
  if (f.types !== undefined && !f.types.some((p) => typeMatches(p, e.type))) return false;
  if (e.sender !== undefined) {
    if (f.notSenders.includes(e.sender)) return false;
    if (f.senders !== undefined && !f.senders.includes(e.sender)) return false;
  }
  if (e.roomId !== undefined && f.notRooms !== undefined && !roomAllowed(f, e.roomId)) return false;
  if (f.containsUrl !== undefined) {
    const url = isJsonObject(e.content) ? e.content['url'] : undefined;
    if ((typeof url === 'string') !== f.containsUrl) return false;
  }
  return true;
}

/** True when the filter can let nothing through (Synapse's `filters_all_types/senders`). */
export function blocksAll(f: EventFilter & { rooms?: string[]; notRooms?: string[] }): boolean {
  return f.types?.length === 0 || f.notTypes.includes('*') || f.senders?.length === 0 || f.rooms?.length === 0 || (f.notRooms ?? []).includes('*');
}
