/**
 * The redaction algorithm of each room version: which top-level keys and
 * which `content` keys survive. The same algorithm gives the part of an event
 * that is signed and the input of the reference hash, so every byte matters.
 */
import { requireRoomVersion, type RoomVersion } from './room-versions.js';
import { isJsonObject } from './json-values.js';

type Algorithm = RoomVersion['redaction'];
type JsonRecord = Record<string, unknown>;

const TOP_LEVEL_V1: readonly string[] = [
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'prev_state',
  'auth_events',
  'origin',
  'origin_server_ts',
  'membership',
];
// v11 stops protecting `origin`, `membership` and `prev_state`.
const TOP_LEVEL_V11: readonly string[] = TOP_LEVEL_V1.filter((k) => k !== 'origin' && k !== 'membership' && k !== 'prev_state');

const POWER_LEVELS_V1 = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];
// v11 adds `invite`.
const POWER_LEVELS_V11 = [...POWER_LEVELS_V1, 'invite'];

/** Content keys kept per event type, per algorithm (create and member in v11 are handled in code). */
const CONTENT_KEYS: Readonly<Record<Algorithm, Readonly<Record<string, readonly string[]>>>> = {
  v1: {
    'm.room.member': ['membership'],
    'm.room.create': ['creator'],
    'm.room.join_rules': ['join_rule'],
    'm.room.power_levels': POWER_LEVELS_V1,
    // v1-v5 only: v6 drops the aliases special case.
    'm.room.aliases': ['aliases'],
    'm.room.history_visibility': ['history_visibility'],
  },
  v6: {
    'm.room.member': ['membership'],
    'm.room.create': ['creator'],
    'm.room.join_rules': ['join_rule'],
    'm.room.power_levels': POWER_LEVELS_V1,
    'm.room.history_visibility': ['history_visibility'],
  },
  v8: {
    'm.room.member': ['membership'],
    'm.room.create': ['creator'],
    // v8 keeps the restricted-join `allow` list.
    'm.room.join_rules': ['join_rule', 'allow'],
    'm.room.power_levels': POWER_LEVELS_V1,
    'm.room.history_visibility': ['history_visibility'],
  },
  v9: {
    // v9 keeps the restricted-join authoriser.
    'm.room.member': ['membership', 'join_authorised_via_users_server'],
    'm.room.create': ['creator'],
    'm.room.join_rules': ['join_rule', 'allow'],
    'm.room.power_levels': POWER_LEVELS_V1,
    'm.room.history_visibility': ['history_visibility'],
  },
  v11: {
    'm.room.member': ['membership', 'join_authorised_via_users_server'],
    'm.room.join_rules': ['join_rule', 'allow'],
    'm.room.power_levels': POWER_LEVELS_V11,
    'm.room.history_visibility': ['history_visibility'],
    'm.room.redaction': ['redacts'],
  },
};

function hasOwn(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function redactContent(type: unknown, content: unknown, algorithm: Algorithm): JsonRecord {
  const out: JsonRecord = {};
  if (typeof type !== 'string' || !isJsonObject(content)) return out;
  if (algorithm === 'v11' && type === 'm.room.create') {
    // v11 keeps the whole create content.
    return { ...content };
  }
  const keep = hasOwn(CONTENT_KEYS[algorithm], type) ? CONTENT_KEYS[algorithm][type] : undefined;
  if (keep !== undefined) {
    for (const key of keep) if (hasOwn(content, key)) out[key] = content[key];
  }
  if (algorithm === 'v11' && type === 'm.room.member') {
    // v11 keeps `third_party_invite.signed`. As Synapse does, an object
    // `third_party_invite` without `signed` becomes `{}` rather than vanishing;
    // the spec's wording allows either and signatures must match Synapse's.
    const tpi = content['third_party_invite'];
    if (isJsonObject(tpi)) {
      out['third_party_invite'] = hasOwn(tpi, 'signed') ? { signed: tpi['signed'] } : {};
    }
  }
  return out;
}

/** `redact` with the room version row already looked up. */
export function redactWith<T extends object>(event: T, version: RoomVersion): Record<string, unknown> {
  const algorithm = version.redaction;
  const ev = event as JsonRecord;
  const out: JsonRecord = {};
  for (const key of algorithm === 'v11' ? TOP_LEVEL_V11 : TOP_LEVEL_V1) {
    if (key === 'content') continue;
    if (hasOwn(ev, key)) out[key] = ev[key];
  }
  // Like Synapse, `content` is always present after redaction, `{}` at least.
  out['content'] = redactContent(ev['type'], ev['content'], algorithm);
  return out;
}

/**
 * The redacted form of an event under the room version's algorithm. Returns a
 * new top-level object and a new `content`; values below those are shared
 * with the input, so treat both as immutable. `unsigned` is dropped, as the
 * spec's algorithm says (clients' `redacted_because` is added by callers).
 * Throws UnsupportedRoomVersionError for an unknown room version.
 */
export function redact<T extends object>(event: T, roomVersion: string): Record<string, unknown> {
  return redactWith(event, requireRoomVersion(roomVersion));
}
