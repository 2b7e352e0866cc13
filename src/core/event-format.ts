/**
 * Whether a PDU has the shape its room version's event format requires
 * (server-server API, "Checks performed on receipt of a PDU", step 1): the
 * required keys and their types, the size limits, and the id shapes. An event
 * that fails is dropped, so this checks only what the spec states: content
 * schemas belong to the auth rules.
 */
import { Buffer } from 'node:buffer';
import { canonicalJson, CanonicalJsonError } from './canonical-json.js';
import type { PDU } from './pdu.js';
import { requireRoomVersion, type RoomVersion } from './room-versions.js';

export interface EventFormatProblem {
  /** The offending key, e.g. `prev_events[3]`; empty for the whole event. */
  path: string;
  message: string;
}

export class EventFormatError extends Error {
  constructor(readonly problems: readonly EventFormatProblem[]) {
    super(`invalid event: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`);
    this.name = 'EventFormatError';
  }
}

/** The whole event as canonical JSON, signatures included (client-server API, "Size limits"). */
export const MAX_EVENT_BYTES = 65_536;
/** sender, room_id, state_key, type and event_id (in UTF-8 bytes). */
export const MAX_ID_BYTES = 255;
export const MAX_PREV_EVENTS = 20;
export const MAX_AUTH_EVENTS = 10;

// server_name = hostname [ ":" port ]; hostname = IPv4 / "[" IPv6 "]" / dns-name
// (an IPv4 literal is also a dns-name as far as characters go).
const SERVER_NAME = '(?:\\[[0-9A-Fa-f:.]{2,45}\\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?';
// Historical grammar: localparts may hold anything but `:` and NUL, even nothing.
const USER_ID = new RegExp(`^@[^:\\u0000]*:${SERVER_NAME}$`);
const ROOM_ID_WITH_SERVER = new RegExp(`^![^:\\u0000]*:${SERVER_NAME}$`);
const EVENT_ID_WITH_SERVER = new RegExp(`^\\$[^:\\u0000]*:${SERVER_NAME}$`);
// v12: `!` + URL-safe unpadded base64 of a SHA-256 (32 bytes -> 43 characters).
const ROOM_ID_HASH = /^![A-Za-z0-9_-]{43}$/;
const SERVER_NAME_ONLY = new RegExp(`^${SERVER_NAME}$`);

/** Whether `s` matches the spec's server name grammar. */
export function isValidServerName(s: string): boolean {
  return SERVER_NAME_ONLY.test(s);
}

/** Whether `s` is a user id under the historical (lenient) grammar every server must accept. */
export function isValidUserId(s: unknown): s is string {
  return typeof s === 'string' && Buffer.byteLength(s, 'utf8') <= MAX_ID_BYTES && USER_ID.test(s);
}

/** The server part of an id `<sigil><localpart>:<server>`, or undefined if there is none. */
export function serverNameOf(id: string): string | undefined {
  const i = id.indexOf(':');
  if (i < 1) return undefined;
  const server = id.slice(i + 1);
  return isValidServerName(server) ? server : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * The problems with an event for the room version, empty when it is well
 * formed. Throws UnsupportedRoomVersionError for an unknown room version.
 */
export function validateEventFormat(event: unknown, roomVersion: string): EventFormatProblem[] {
  return validateWith(event, requireRoomVersion(roomVersion));
}

/** Throws EventFormatError listing every problem unless the event is well formed. */
export function assertEventFormat(event: unknown, roomVersion: string): asserts event is PDU {
  const problems = validateEventFormat(event, roomVersion);
  if (problems.length > 0) throw new EventFormatError(problems);
}

function validateWith(event: unknown, version: RoomVersion): EventFormatProblem[] {
  const problems: EventFormatProblem[] = [];
  const add = (path: string, message: string): void => {
    problems.push({ path, message });
  };
  if (!isRecord(event)) {
    add('', 'event must be a JSON object');
    return problems;
  }

  try {
    const size = bytes(canonicalJson(event));
    if (size > MAX_EVENT_BYTES) add('', `event is ${size} bytes as canonical JSON, more than ${MAX_EVENT_BYTES}`);
  } catch (err) {
    if (!(err instanceof CanonicalJsonError)) throw err;
    add(err.path, err.reason);
  }

  const idString = (key: string, required: boolean): string | undefined => {
    const v = event[key];
    if (v === undefined) {
      if (required) add(key, 'required');
      return undefined;
    }
    if (typeof v !== 'string') {
      add(key, 'must be a string');
      return undefined;
    }
    if (bytes(v) > MAX_ID_BYTES) {
      add(key, `longer than ${MAX_ID_BYTES} bytes`);
      return undefined;
    }
    return v;
  };

  const type = idString('type', true);
  idString('state_key', false);

  const sender = idString('sender', true);
  if (sender !== undefined && !USER_ID.test(sender)) add('sender', 'not a user id (@localpart:server)');

  const roomIdOptional = version.roomIdFromCreateEvent && type === 'm.room.create';
  const roomId = idString('room_id', !roomIdOptional);
  if (roomId !== undefined && !roomIdOptional) {
    if (version.roomIdFromCreateEvent) {
      if (!ROOM_ID_HASH.test(roomId)) add('room_id', 'not a room id (! + 43 URL-safe base64 characters)');
    } else if (!ROOM_ID_WITH_SERVER.test(roomId)) {
      add('room_id', 'not a room id (!opaque:server)');
    }
  }

  const ownEventId = idString('event_id', version.eventIdFormat === 'v1');
  if (ownEventId !== undefined && version.eventIdFormat === 'v1' && !EVENT_ID_WITH_SERVER.test(ownEventId)) {
    add('event_id', 'not an event id ($opaque:server)');
  }

  const ts = event['origin_server_ts'];
  if (ts === undefined) add('origin_server_ts', 'required');
  else if (typeof ts !== 'number' || !Number.isInteger(ts)) add('origin_server_ts', 'must be an integer');

  const depth = event['depth'];
  if (depth === undefined) add('depth', 'required');
  else if (typeof depth !== 'number' || !Number.isInteger(depth) || depth < 0) {
    add('depth', 'must be a non-negative integer');
  }

  if (event['content'] === undefined) add('content', 'required');
  else if (!isRecord(event['content'])) add('content', 'must be an object');

  const hashes = event['hashes'];
  if (hashes === undefined) add('hashes', 'required');
  else if (!isRecord(hashes)) add('hashes', 'must be an object');
  else if (typeof hashes['sha256'] !== 'string') add('hashes.sha256', 'must be a string');

  const signatures = event['signatures'];
  if (signatures === undefined) add('signatures', 'required');
  else if (!isRecord(signatures)) add('signatures', 'must be an object');
  else {
    for (const [server, sigs] of Object.entries(signatures)) {
      if (!isRecord(sigs) || !Object.values(sigs).every((s) => typeof s === 'string')) {
        add(`signatures[${JSON.stringify(server)}]`, 'must be an object of strings');
      }
    }
  }

  if (event['unsigned'] !== undefined && !isRecord(event['unsigned'])) add('unsigned', 'must be an object');
  if (event['redacts'] !== undefined && typeof event['redacts'] !== 'string') add('redacts', 'must be a string');

  checkReferences(event, 'prev_events', MAX_PREV_EVENTS, version, add);
  checkReferences(event, 'auth_events', MAX_AUTH_EVENTS, version, add);
  return problems;
}

/**
 * prev_events/auth_events: v1/v2 `[event_id, {sha256: ...}]` pairs, v3+ plain
 * ids. Referenced ids are only checked to be `$`-ids within the length limit:
 * other servers do not check their shape, and refusing what they accept would
 * split the room.
 */
function checkReferences(
  event: Record<string, unknown>,
  key: 'prev_events' | 'auth_events',
  max: number,
  version: RoomVersion,
  add: (path: string, message: string) => void,
): void {
  const refs = event[key];
  if (refs === undefined) {
    add(key, 'required');
    return;
  }
  if (!Array.isArray(refs)) {
    add(key, 'must be an array');
    return;
  }
  if (refs.length > max) add(key, `more than ${max} entries`);
  const checkId = (id: unknown, path: string): void => {
    if (typeof id !== 'string' || id[0] !== '$') add(path, 'must be an event id');
    else if (bytes(id) > MAX_ID_BYTES) add(path, `longer than ${MAX_ID_BYTES} bytes`);
  };
  for (let i = 0; i < refs.length; i++) {
    const ref: unknown = refs[i];
    const path = `${key}[${i}]`;
    if (version.eventIdListsOnly) {
      checkId(ref, path);
    } else if (!Array.isArray(ref) || ref.length !== 2) {
      add(path, 'must be an [event_id, hashes] pair');
    } else {
      checkId(ref[0], `${path}[0]`);
      if (!isRecord(ref[1])) add(`${path}[1]`, 'must be an object of hashes');
    }
  }
}
