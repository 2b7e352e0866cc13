/**
 * Reading power levels the way each room version reads them.
 *
 * - v1-v5: numbers may be floats (truncated toward zero) and strings holding
 *   an integer are accepted ("v1-floaty-power-levels", "v1-stringy-power-levels").
 * - v6-v9: strings holding an integer are accepted; numbers must be integers
 *   (canonical JSON forbids floats).
 * - v10+: only integers.
 *
 * A value that does not parse reads as absent (the default applies); the auth
 * rules reject such values in new `m.room.power_levels` events where the spec
 * says so (see rules.ts).
 */
import type { JsonObject, JsonValue, PDU } from '../pdu.js';
import type { RoomVersion } from '../room-versions.js';
import { isObject } from './json.js';

/** The scalar level keys of `m.room.power_levels` content. */
export const LEVEL_KEYS = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;
export type LevelKey = (typeof LEVEL_KEYS)[number];

/** Defaults the spec gives when a key (or the whole event) is absent. */
export const LEVEL_DEFAULTS: Readonly<Record<LevelKey, number>> = {
  users_default: 0,
  events_default: 0,
  state_default: 50,
  ban: 50,
  redact: 50,
  kick: 50,
  invite: 0,
};

/** The level a room creator has when the room has no `m.room.power_levels` (v1-v11). */
export const CREATOR_DEFAULT_LEVEL = 100;

/** Spec form of an integer in a string: optional whitespace, sign, base-10 digits. */
const INTEGER_STRING = /^\s*[+-]?[0-9]+\s*$/;

/**
 * The integer a power level value stands for in this room version, or
 * undefined if it does not stand for one.
 */
export function parseLevel(rv: RoomVersion, value: JsonValue | undefined): number | undefined {
  if (typeof value === 'number') {
    if (rv.strictCanonicalJson) return Number.isSafeInteger(value) ? value : undefined;
    if (!Number.isFinite(value)) return undefined;
    const t = Math.trunc(value);
    return t === 0 ? 0 : t; // no -0
  }
  if (typeof value === 'string') {
    if (rv.integerPowerLevels || !INTEGER_STRING.test(value)) return undefined;
    const n = Number(value.trim());
    return n === 0 ? 0 : n;
  }
  return undefined;
}

/** Whether `value` is a level this room version accepts (what "is an integer" means for it). */
export function isValidLevel(rv: RoomVersion, value: JsonValue | undefined): boolean {
  return parseLevel(rv, value) !== undefined;
}

/** A scalar level (`ban`, `invite`, ...) from power levels content, or its default. */
export function namedLevel(rv: RoomVersion, powerLevels: PDU | undefined, key: LevelKey): number {
  if (powerLevels === undefined) return LEVEL_DEFAULTS[key];
  return parseLevel(rv, powerLevels.content[key]) ?? LEVEL_DEFAULTS[key];
}

/** The map under `events`, `notifications` or `users`, or undefined if absent or not an object. */
export function levelMap(content: JsonObject, key: 'events' | 'notifications' | 'users'): JsonObject | undefined {
  const m = content[key];
  return isObject(m) ? m : undefined;
}

/** The level required to send an event of `type` (state if `isState`). */
export function sendLevel(rv: RoomVersion, powerLevels: PDU | undefined, type: string, isState: boolean): number {
  if (powerLevels !== undefined) {
    const events = levelMap(powerLevels.content, 'events');
    if (events !== undefined && Object.hasOwn(events, type)) {
      const l = parseLevel(rv, events[type]);
      if (l !== undefined) return l;
    }
  }
  return namedLevel(rv, powerLevels, isState ? 'state_default' : 'events_default');
}

/**
 * The room creators: v1-v10 `content.creator`; v11 the create event's
 * sender; v12+ the sender plus every string in `content.additional_creators`.
 */
export function roomCreators(rv: RoomVersion, create: PDU | undefined): string[] {
  if (create === undefined) return [];
  if (!rv.implicitRoomCreator) {
    const c = create.content['creator'];
    return typeof c === 'string' ? [c] : [];
  }
  if (!rv.privilegedCreators) return [create.sender];
  const out = [create.sender];
  const extra = create.content['additional_creators'];
  if (Array.isArray(extra)) for (const u of extra) if (typeof u === 'string') out.push(u);
  return out;
}

/** Whether `userId` is a room creator (see roomCreators), without allocating. */
export function isRoomCreator(rv: RoomVersion, userId: string, create: PDU | undefined): boolean {
  if (create === undefined) return false;
  if (!rv.implicitRoomCreator) return create.content['creator'] === userId;
  if (create.sender === userId) return true;
  if (!rv.privilegedCreators) return false;
  const extra = create.content['additional_creators'];
  return Array.isArray(extra) && extra.includes(userId);
}

/**
 * A user's power level: v12+ creators have Infinity; otherwise their
 * `users` entry, else `users_default`, else 0; with no power levels event
 * the creator has 100 and everyone else 0.
 */
export function userPowerLevel(rv: RoomVersion, userId: string, powerLevels: PDU | undefined, create: PDU | undefined): number {
  if (rv.privilegedCreators && isRoomCreator(rv, userId, create)) return Infinity;
  if (powerLevels !== undefined) {
    const users = levelMap(powerLevels.content, 'users');
    if (users !== undefined && Object.hasOwn(users, userId)) {
      const l = parseLevel(rv, users[userId]);
      if (l !== undefined) return l;
    }
    return namedLevel(rv, powerLevels, 'users_default');
  }
  return isRoomCreator(rv, userId, create) ? CREATOR_DEFAULT_LEVEL : 0;
}
