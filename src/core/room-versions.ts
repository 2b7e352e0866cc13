/**
 * The room versions the spec defines and what each one changes.
 *
 * Every other part of the core asks this table rather than comparing version
 * strings, so adding a version is adding a row.
 */

/** How event ids are formed. */
export type EventIdFormat =
  /** v1, v2: `$<random>:<server>`, chosen by the origin server. */
  | 'v1'
  /** v3: `$` + standard unpadded base64 of the reference hash. */
  | 'v3'
  /** v4+: `$` + URL-safe unpadded base64 of the reference hash. */
  | 'v4';

/** Which state resolution algorithm a room uses. */
export type StateResAlgorithm = 'v1' | 'v2' | 'v2.1';

export interface RoomVersion {
  readonly id: string;
  /** Stable versions are the ones a server offers by default. */
  readonly stability: 'stable' | 'unstable';
  readonly eventIdFormat: EventIdFormat;
  readonly stateRes: StateResAlgorithm;
  /** v5+: a signing key may not be used after its `valid_until_ts`. */
  readonly enforceKeyValidity: boolean;
  /** v1-v5: `m.room.aliases` has its own auth rule and redaction keeps `aliases`. */
  readonly specialCaseAliasesAuth: boolean;
  /**
   * v1-v2: `m.room.redaction` has its own auth rule (allowed at the redact
   * level, or when the redacted event's id has the redaction's server). v3+
   * redactions are authorised like any other event.
   */
  readonly specialCaseRedactionsAuth: boolean;
  /** v6+: canonical JSON is strict (no floats, integers within ±(2^53-1)). */
  readonly strictCanonicalJson: boolean;
  /** v6+: the `notifications` key of power levels is checked by the auth rules. */
  readonly limitNotificationsPowerLevels: boolean;
  /** v7+: `knock` membership and join rule exist. */
  readonly knockJoinRule: boolean;
  /** v8+: `restricted` join rule and `join_authorised_via_users_server`. */
  readonly restrictedJoinRule: boolean;
  /** v10+: `knock_restricted` join rule. */
  readonly knockRestrictedJoinRule: boolean;
  /** v10+: power level values must be integers (not strings). */
  readonly integerPowerLevels: boolean;
  /** v11+: the room creator is the create event's sender; `creator` is not used. */
  readonly implicitRoomCreator: boolean;
  /** v11+: `redacts` lives in `content` of an `m.room.redaction` event. */
  readonly redactsInContent: boolean;
  /** v3+: `prev_events`/`auth_events` are plain event id lists (v1/v2: `[id, hashes]` pairs). */
  readonly eventIdListsOnly: boolean;
  /** v12+: room id is `!` + the create event's reference hash (URL-safe); no server part. */
  readonly roomIdFromCreateEvent: boolean;
  /** v12+: creators (sender + `additional_creators`) have infinite power level. */
  readonly privilegedCreators: boolean;
  /** Which redaction algorithm applies; see redaction.ts. */
  readonly redaction: 'v1' | 'v6' | 'v8' | 'v9' | 'v11';
}

function v(id: string, fields: Omit<RoomVersion, 'id' | 'stability'>): RoomVersion {
  return Object.freeze({ id, stability: 'stable' as const, ...fields });
}

const V1 = v('1', {
  eventIdFormat: 'v1',
  stateRes: 'v1',
  enforceKeyValidity: false,
  specialCaseAliasesAuth: true,
  specialCaseRedactionsAuth: true,
  strictCanonicalJson: false,
  limitNotificationsPowerLevels: false,
  knockJoinRule: false,
  restrictedJoinRule: false,
  knockRestrictedJoinRule: false,
  integerPowerLevels: false,
  implicitRoomCreator: false,
  redactsInContent: false,
  eventIdListsOnly: false,
  roomIdFromCreateEvent: false,
  privilegedCreators: false,
  redaction: 'v1',
});
const V2 = v('2', { ...strip(V1), stateRes: 'v2' });
const V3 = v('3', { ...strip(V2), eventIdFormat: 'v3', eventIdListsOnly: true, specialCaseRedactionsAuth: false });
const V4 = v('4', { ...strip(V3), eventIdFormat: 'v4' });
const V5 = v('5', { ...strip(V4), enforceKeyValidity: true });
const V6 = v('6', {
  ...strip(V5),
  specialCaseAliasesAuth: false,
  strictCanonicalJson: true,
  limitNotificationsPowerLevels: true,
  redaction: 'v6',
});
const V7 = v('7', { ...strip(V6), knockJoinRule: true });
const V8 = v('8', { ...strip(V7), restrictedJoinRule: true, redaction: 'v8' });
const V9 = v('9', { ...strip(V8), redaction: 'v9' });
const V10 = v('10', { ...strip(V9), knockRestrictedJoinRule: true, integerPowerLevels: true });
const V11 = v('11', { ...strip(V10), implicitRoomCreator: true, redactsInContent: true, redaction: 'v11' });
const V12 = v('12', { ...strip(V11), stateRes: 'v2.1', roomIdFromCreateEvent: true, privilegedCreators: true });

function strip(r: RoomVersion): Omit<RoomVersion, 'id' | 'stability'> {
  const { id: _id, stability: _s, ...rest } = r;
  return rest;
}

export const ROOM_VERSIONS: ReadonlyMap<string, RoomVersion> = new Map([V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12].map((r) => [r.id, r]));

/** Synapse's default for `default_room_version` (10 from 1.76, 11 in current releases). */
export const DEFAULT_ROOM_VERSION = '11';

/** The table row for a room version, or undefined for one we do not know. */
export function roomVersion(id: string): RoomVersion | undefined {
  return ROOM_VERSIONS.get(id);
}

export class UnsupportedRoomVersionError extends Error {
  constructor(readonly version: string) {
    super(`Unsupported room version: ${version}`);
    this.name = 'UnsupportedRoomVersionError';
  }
}

/** The table row for a room version; throws UnsupportedRoomVersionError for one we do not know. */
export function requireRoomVersion(id: string): RoomVersion {
  const r = ROOM_VERSIONS.get(id);
  if (!r) throw new UnsupportedRoomVersionError(id);
  return r;
}
