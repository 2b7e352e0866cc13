/**
 * Event ids per room version, and v12 room ids.
 *
 * v1/v2: `$opaque:server`, chosen by the sending server and carried in the
 * event. v3: `$` + standard unpadded base64 of the reference hash. v4+: the
 * same in URL-safe base64. Hash-based ids are never stored in the PDU itself:
 * a v3+ event object that carries an `event_id` key hashes differently.
 */
import { randomInt } from 'node:crypto';
import { encodeBase64, encodeBase64Url } from './base64.js';
import { referenceHashWith } from './hashes.js';
import { requireRoomVersion, roomVersion as lookupRoomVersion, UnsupportedRoomVersionError } from './room-versions.js';

export class EventIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventIdError';
  }
}

/**
 * The event id of an event in the given room version. Throws
 * UnsupportedRoomVersionError, EventIdError (v1/v2 event without a string
 * `event_id`) or CanonicalJsonError (v3+ event that is not canonical JSON).
 */
export function eventId(event: object, roomVersion: string): string {
  const version = requireRoomVersion(roomVersion);
  switch (version.eventIdFormat) {
    case 'v1': {
      const id = (event as { event_id?: unknown }).event_id;
      if (typeof id !== 'string') throw new EventIdError(`room version ${roomVersion} event has no string event_id`);
      return id;
    }
    case 'v3':
      return '$' + encodeBase64(referenceHashWith(event, version));
    case 'v4':
      return '$' + encodeBase64Url(referenceHashWith(event, version));
  }
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `n` random characters from [A-Za-z0-9], uniformly (crypto.randomInt has no modulo bias). */
export function randomAlphanumeric(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return s;
}

/** A fresh event id for room versions 1 and 2: `$` + 18 random alphanumerics + `:` + server. */
export function newV1EventId(serverName: string): string {
  return `$${randomAlphanumeric(18)}:${serverName}`;
}

/**
 * The room id of a room whose version derives it from the create event (v12+):
 * the create event's event id with `!` in place of `$`, i.e. `!` + URL-safe
 * unpadded base64 of its reference hash, with no server part. The version
 * comes from `roomVersion` or else the create event's `content.room_version`.
 * Throws UnsupportedRoomVersionError for an unknown version and EventIdError
 * for a version whose room ids are not derived from the create event.
 */
export function roomIdFromCreateEvent(createEvent: object, roomVersion?: string): string {
  let versionId = roomVersion;
  if (versionId === undefined) {
    const content = (createEvent as { content?: unknown }).content;
    const v = typeof content === 'object' && content !== null ? (content as { room_version?: unknown }).room_version : undefined;
    // Without `room_version` a create event means room version 1.
    if (v !== undefined && typeof v !== 'string') throw new EventIdError('content.room_version is not a string');
    versionId = v ?? '1';
  }
  const version = lookupRoomVersion(versionId);
  if (version === undefined) throw new UnsupportedRoomVersionError(versionId);
  if (!version.roomIdFromCreateEvent) {
    throw new EventIdError(`room version ${versionId} room ids are not derived from the create event`);
  }
  if ((createEvent as { type?: unknown }).type !== 'm.room.create') {
    throw new EventIdError('not an m.room.create event');
  }
  return '!' + encodeBase64Url(referenceHashWith(createEvent, version));
}
