/**
 * JSON shapes shared by the core. Everything here is plain JSON data, as it
 * travels over federation; the core never attaches methods to events.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** `{ server_name: { key_id: signature } }` */
export type Signatures = Record<string, Record<string, string>>;

/**
 * A persistent data unit in any room version. v1/v2 carry `event_id` and
 * `[id, hashes]` pairs in `prev_events`/`auth_events`; v3+ carry plain ids.
 * v11+ carries `redacts` in `content` for redactions.
 */
export interface PDU {
  event_id?: string;
  room_id: string;
  sender: string;
  origin?: string;
  origin_server_ts: number;
  type: string;
  state_key?: string;
  content: JsonObject;
  prev_events: (string | [string, JsonObject])[];
  auth_events: (string | [string, JsonObject])[];
  depth: number;
  hashes?: { sha256: string } & JsonObject;
  signatures?: Signatures;
  unsigned?: JsonObject;
  redacts?: string;
  [key: string]: JsonValue | undefined;
}

/** The result of an auth check; `reason` names the rule that rejected the event. */
export interface AuthResult {
  allowed: boolean;
  reason?: string;
}

/** A state map key: `type` and `state_key` joined by NUL, which neither may contain. */
export type StateMapKey = string;
export function stateMapKey(type: string, stateKey: string): StateMapKey {
  return `${type}\u0000${stateKey}`;
}
export function splitStateMapKey(key: StateMapKey): [type: string, stateKey: string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** Event ids referenced by `prev_events`/`auth_events`, whatever the room version's form. */
export function referencedIds(refs: PDU['prev_events']): string[] {
  return refs.map((r) => (typeof r === 'string' ? r : r[0]));
}
