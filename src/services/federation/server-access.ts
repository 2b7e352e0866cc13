/**
 * Whether another server may use a room through the federation API:
 * - host in room: one of its users is joined in the current state, else
 *   403 M_FORBIDDEN "Host not in room." (also for a room we do not know, as
 *   Synapse answers);
 * - server ACL: the room's current `m.room.server_acl` allows it (core
 *   serverAllowedByAcl, the port ignored), else 403 M_FORBIDDEN "Server is
 *   banned from room", as Synapse words both.
 * The read endpoints (served-events.ts) check both; /send, make_join,
 * send_join and the rest call `assertServerAllowed` (or
 * `serverAllowedInRoom`, to skip one PDU of a transaction).
 */
import { serverAllowedByAcl } from '../../core/server-acl.js';
import { forbidden } from '../../matrix-error.js';
import type { Db } from '../../storage/db.js';
import { getEvent } from '../../storage/events.js';
import { isHostJoined } from '../../storage/served-events.js';
import { currentState } from '../../storage/state.js';

/** Whether the room's current server ACL lets `serverName` (with or without port) take part. No ACL: yes. */
export async function serverAllowedInRoom(db: Db, roomId: string, serverName: string): Promise<boolean> {
  const [row] = await currentState(db, roomId, [['m.room.server_acl', '']]);
  if (!row) return serverAllowedByAcl(undefined, serverName);
  const acl = await getEvent(db, row.event_id);
  return serverAllowedByAcl(acl?.json['content'] ?? {}, serverName);
}

/** 403 M_FORBIDDEN "Server is banned from room" unless the room's server ACL allows `serverName`. */
export async function assertServerAllowed(db: Db, roomId: string, serverName: string): Promise<void> {
  if (!(await serverAllowedInRoom(db, roomId, serverName))) throw forbidden('Server is banned from room');
}

/** 403 M_FORBIDDEN "Host not in room." unless a user of `serverName` is joined to the room now. */
export async function assertHostInRoom(db: Db, roomId: string, serverName: string): Promise<void> {
  if (!(await isHostJoined(db, roomId, serverName))) throw forbidden('Host not in room.');
}

/** Both checks, in Synapse's order for the read endpoints: host in room first, so the ACL is not shown to outsiders. */
export async function assertServerInRoom(db: Db, roomId: string, serverName: string): Promise<void> {
  await assertHostInRoom(db, roomId, serverName);
  await assertServerAllowed(db, roomId, serverName);
}
