/**
 * The auth rule for `m.room.power_levels` events (v1-v5 rule 10, v6-v11
 * rule 9, v12 rule 10): shape checks, then the limits on what a sender may
 * change relative to their own level.
 */
import type { AuthResult, JsonObject, PDU } from '../pdu.js';
import type { RoomVersion } from '../room-versions.js';
import { isValidUserId } from './ids.js';
import { isObject } from './json.js';
import { LEVEL_KEYS, isValidLevel, levelMap, parseLevel, roomCreators } from './power-levels.js';
import { ALLOWED, deny } from './types.js';

const R = 'm.room.power_levels';

function integerWord(rv: RoomVersion): string {
  return rv.integerPowerLevels ? 'an integer' : 'an integer (or a string holding one)';
}

/** The shape checks on the new content (they apply with or without a previous event). */
function checkShape(rv: RoomVersion, content: JsonObject, create: PDU | undefined): AuthResult | undefined {
  if (rv.integerPowerLevels) {
    for (const key of LEVEL_KEYS) {
      if (Object.hasOwn(content, key) && !isValidLevel(rv, content[key])) {
        return deny(`${R}: \`${key}\` is not an integer`);
      }
    }
    for (const key of ['events', 'notifications'] as const) {
      if (!Object.hasOwn(content, key)) continue;
      const m = content[key];
      if (!isObject(m)) return deny(`${R}: \`${key}\` is not an object`);
      for (const k of Object.keys(m)) {
        if (!isValidLevel(rv, m[k])) return deny(`${R}: \`${key}\` value for ${JSON.stringify(k)} is not an integer`);
      }
    }
  }
  if (Object.hasOwn(content, 'users')) {
    const users = content['users'];
    if (!isObject(users)) return deny(`${R}: \`users\` is not an object`);
    for (const k of Object.keys(users)) {
      if (!isValidUserId(k)) return deny(`${R}: \`users\` key ${JSON.stringify(k)} is not a valid user ID`);
      if (!isValidLevel(rv, users[k])) {
        return deny(`${R}: \`users\` value for ${k} is not ${integerWord(rv)}`);
      }
    }
    if (rv.privilegedCreators) {
      for (const c of roomCreators(rv, create)) {
        if (Object.hasOwn(users, c)) return deny(`${R}: \`users\` lists room creator ${c}, whose power is fixed`);
      }
    }
  }
  return undefined;
}

/** Changed, added or removed entries of `events`/`notifications`. */
function checkMap(rv: RoomVersion, name: 'events' | 'notifications', before: JsonObject | undefined, after: JsonObject | undefined, senderLevel: number): AuthResult | undefined {
  if (before !== undefined) {
    for (const k of Object.keys(before)) {
      const o = parseLevel(rv, before[k]);
      const n = after !== undefined && Object.hasOwn(after, k) ? parseLevel(rv, after[k]) : undefined;
      if (o === n) continue;
      if (o !== undefined && o > senderLevel) {
        return deny(`${R}: cannot change \`${name}\` entry ${JSON.stringify(k)}: its current level ${o} is above the sender's ${senderLevel}`);
      }
      if (n !== undefined && n > senderLevel) {
        return deny(`${R}: cannot set \`${name}\` entry ${JSON.stringify(k)} to ${n}, above the sender's ${senderLevel}`);
      }
    }
  }
  if (after !== undefined) {
    for (const k of Object.keys(after)) {
      if (before !== undefined && Object.hasOwn(before, k)) continue;
      const n = parseLevel(rv, after[k]);
      if (n !== undefined && n > senderLevel) {
        return deny(`${R}: cannot set \`${name}\` entry ${JSON.stringify(k)} to ${n}, above the sender's ${senderLevel}`);
      }
    }
  }
  return undefined;
}

/** Changed, added or removed entries of `users`. */
function checkUsers(rv: RoomVersion, sender: string, before: JsonObject | undefined, after: JsonObject | undefined, senderLevel: number): AuthResult | undefined {
  if (before !== undefined) {
    for (const k of Object.keys(before)) {
      const o = parseLevel(rv, before[k]);
      const n = after !== undefined && Object.hasOwn(after, k) ? parseLevel(rv, after[k]) : undefined;
      if (o === n) continue;
      if (k !== sender && o !== undefined && o >= senderLevel) {
        return deny(`${R}: cannot change the level of ${k}: their current level ${o} is not below the sender's ${senderLevel}`);
      }
      if (n !== undefined && n > senderLevel) {
        return deny(`${R}: cannot set the level of ${k} to ${n}, above the sender's ${senderLevel}`);
      }
    }
  }
  if (after !== undefined) {
    for (const k of Object.keys(after)) {
      if (before !== undefined && Object.hasOwn(before, k)) continue;
      const n = parseLevel(rv, after[k]);
      if (n !== undefined && n > senderLevel) {
        return deny(`${R}: cannot set the level of ${k} to ${n}, above the sender's ${senderLevel}`);
      }
    }
  }
  return undefined;
}

/**
 * Whether a power levels event is allowed, given the previous power levels
 * event (if any) and the sender's current level.
 */
export function checkPowerLevelsEvent(rv: RoomVersion, event: PDU, previous: PDU | undefined, create: PDU | undefined, senderLevel: number): AuthResult {
  const content = event.content;
  const bad = checkShape(rv, content, create);
  if (bad !== undefined) return bad;
  if (previous === undefined) return ALLOWED;
  const old = previous.content;

  for (const key of LEVEL_KEYS) {
    const o = parseLevel(rv, old[key]);
    const n = parseLevel(rv, content[key]);
    if (o === n) continue;
    if (o !== undefined && o > senderLevel) {
      return deny(`${R}: cannot change \`${key}\`: its current level ${o} is above the sender's ${senderLevel}`);
    }
    if (n !== undefined && n > senderLevel) {
      return deny(`${R}: cannot set \`${key}\` to ${n}, above the sender's ${senderLevel}`);
    }
  }

  const ev = checkMap(rv, 'events', levelMap(old, 'events'), levelMap(content, 'events'), senderLevel);
  if (ev !== undefined) return ev;
  if (rv.limitNotificationsPowerLevels) {
    const nt = checkMap(rv, 'notifications', levelMap(old, 'notifications'), levelMap(content, 'notifications'), senderLevel);
    if (nt !== undefined) return nt;
  }
  const us = checkUsers(rv, event.sender, levelMap(old, 'users'), levelMap(content, 'users'), senderLevel);
  if (us !== undefined) return us;
  return ALLOWED;
}
