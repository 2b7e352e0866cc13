/**
 * The checks Synapse's EventValidator makes on the content of every event
 * this server creates (client sends and state, createRoom's initial state,
 * memberships), before the auth rules see it; federated events are not
 * checked here. Each failure is a 400 with Synapse's errcode: M_UNKNOWN for
 * the shape checks (Synapse gives none more precise), M_BAD_JSON for power
 * levels, `m.mentions` and retention values, M_INVALID_PARAM for aliases.
 *
 * - `m.room.message`: `body` and `msgtype` are strings.
 * - `m.room.topic`, `m.room.name`: `topic` / `name` is a string; state only.
 * - `m.room.member`: `membership` is one of the five; state only.
 * - `m.room.tombstone`: `replacement_room` is given and is another room; state only.
 * - `m.room.aliases`: no alias over 255 characters.
 * - `m.room.retention`: state only; `min_lifetime`/`max_lifetime` integers, min ≤ max.
 * - `m.room.power_levels`: every level an integer within canonical JSON's
 *   range; `events`, `notifications` and `users` objects of such integers.
 * - any event with `m.mentions`: an object; `user_ids` a list of strings,
 *   `room` a boolean.
 */
import type { JsonObject } from '../../core/pdu.js';
import { MatrixError } from '../../matrix-error.js';
import type { EventDraft } from './event-draft.js';

const MEMBERSHIPS = ['invite', 'join', 'knock', 'leave', 'ban'];
/** Synapse's MAX_ALIAS_LENGTH. */
const MAX_ALIAS_LENGTH = 255;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const shape = (msg: string) => new MatrixError(400, 'M_UNKNOWN', msg);
const badJson = (msg: string) => new MatrixError(400, 'M_BAD_JSON', msg);

/** Refuses a locally created event whose content Synapse would refuse. */
export function validateNewEvent(roomId: string, draft: EventDraft): void {
  const c = draft.content;
  const isState = draft.state_key !== undefined;
  const stateOnly = () => {
    if (!isState) throw shape(`'${draft.type}' must be state events`);
  };
  switch (draft.type) {
    case 'm.room.message':
      strings(c, ['body', 'msgtype']);
      break;
    case 'm.room.topic':
      strings(c, ['topic']);
      stateOnly();
      break;
    case 'm.room.name':
      strings(c, ['name']);
      stateOnly();
      break;
    case 'm.room.member':
      if (!('membership' in c)) throw shape('Content has not membership key');
      if (!MEMBERSHIPS.includes(c['membership'] as string)) throw shape('Invalid membership key');
      stateOnly();
      break;
    case 'm.room.tombstone':
      if (!('replacement_room' in c)) throw shape('Content has no replacement_room key');
      if (c['replacement_room'] === roomId) throw shape('Tombstone cannot reference the room it was sent in');
      stateOnly();
      break;
    case 'm.room.aliases':
      aliases(c['aliases']);
      break;
    case 'm.room.retention':
      retention(c, isState);
      break;
    case 'm.room.power_levels':
      powerLevels(c);
      break;
  }
  if ('m.mentions' in c) mentions(c['m.mentions']);
}

function strings(c: JsonObject, keys: string[]): void {
  for (const k of keys) {
    if (!(k in c)) throw shape(`'${k}' not in content`);
    if (typeof c[k] !== 'string') throw shape(`'${k}' not a string type`);
  }
}

function aliases(v: unknown): void {
  if (!Array.isArray(v)) return;
  for (const a of v) {
    if (typeof a === 'string' && [...a].length > MAX_ALIAS_LENGTH) {
      throw new MatrixError(400, 'M_INVALID_PARAM', `Can't create aliases longer than ${MAX_ALIAS_LENGTH} characters`);
    }
  }
}

function retention(c: JsonObject, isState: boolean): void {
  if (!isState) throw shape('must be a state event');
  const min = c['min_lifetime'];
  const max = c['max_lifetime'];
  for (const [k, v] of [
    ['min_lifetime', min],
    ['max_lifetime', max],
  ] as const) {
    if (v !== undefined && v !== null && !Number.isInteger(v)) throw badJson(`'${k}' must be an integer`);
  }
  if (typeof min === 'number' && typeof max === 'number' && min > max) throw badJson("'min_lifetime' can't be greater than 'max_lifetime");
}

const LEVELS = ['ban', 'events_default', 'invite', 'kick', 'redact', 'state_default', 'users_default'];
const LEVEL_MAPS = ['events', 'notifications', 'users'];

function powerLevels(c: JsonObject): void {
  for (const k of LEVELS) if (k in c) level(c[k], k);
  for (const k of LEVEL_MAPS) {
    if (!(k in c)) continue;
    const m = c[k];
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw badJson(`"${k}": ${show(m)} is not of type 'object'`);
    for (const [key, v] of Object.entries(m)) level(v, key);
  }
}

function level(v: unknown, key: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badJson(`"${key}": ${show(v)} is not of type 'integer'`);
  if (v > MAX_SAFE) throw badJson(`"${key}": ${v} is greater than the maximum of ${MAX_SAFE}`);
  if (v < -MAX_SAFE) throw badJson(`"${key}": ${v} is less than the minimum of ${-MAX_SAFE}`);
}

function mentions(v: unknown): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw badJson(`${show(v)} is not of type 'object'`);
  const m = v as JsonObject;
  if ('user_ids' in m) {
    const ids = m['user_ids'];
    if (!Array.isArray(ids)) throw badJson(`"user_ids": ${show(ids)} is not of type 'array'`);
    const bad = ids.find((u) => typeof u !== 'string');
    if (bad !== undefined) throw badJson(`${show(bad)} is not of type 'string'`);
  }
  if ('room' in m && typeof m['room'] !== 'boolean') throw badJson(`"room": ${show(m['room'])} is not of type 'boolean'`);
}

/** A short JSON rendering of a value for an error message. */
function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 50 ? `${s.slice(0, 50)}…` : s;
}
