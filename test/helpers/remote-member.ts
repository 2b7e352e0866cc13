/**
 * Events of another server's users in a room hosted here, without the
 * make_join/send_join handshake: `remoteEvent` builds the event as the
 * user's server would (prev_events the host's forward extremities,
 * auth_events the spec's selection from the host's current state, depth
 * one more than the deepest prev event, hashed and signed with that
 * server's key), and `persistRemote` stores it on the host through its
 * event pipeline as a received event (checked against its auth events and
 * the state, as the persister checks any PDU from elsewhere).
 * `joinRemote` does both for a join; `inviteRemote` has a local user invite
 * a remote one (a local event, never sent anywhere).
 */
import { authEventSelection } from '../../src/core/auth/index.js';
import { newV1EventId } from '../../src/core/event-id.js';
import { hashAndSignEvent } from '../../src/core/event-signing.js';
import type { JsonObject, PDU } from '../../src/core/pdu.js';
import { requireRoomVersion } from '../../src/core/room-versions.js';
import type { PersistedEvent } from '../../src/services/rooms/event-persister.js';
import { getEvents } from '../../src/storage/events.js';
import { forwardExtremities } from '../../src/storage/rooms.js';
import { currentState } from '../../src/storage/state.js';
import type { FederationServer } from './federation.js';

export interface RemoteDraft {
  type: string;
  content: JsonObject;
  state_key?: string;
  /** Override the prev events (default: the host's forward extremities). */
  prevEvents?: string[];
  ts?: number;
}

/** The PDU `remote`'s user `sender` would send into `roomId`, hosted on `host`. */
export async function remoteEvent(host: FederationServer, remote: FederationServer, roomId: string, sender: string, draft: RemoteDraft): Promise<PDU> {
  const { ctx } = host.test.server;
  const db = ctx.database.db;
  const room = await ctx.services.rooms.pipeline.room(db, roomId);
  const rv = requireRoomVersion(room.room_version);
  const extremities = await forwardExtremities(db, roomId);
  const prevIds = draft.prevEvents ?? extremities.map((e) => e.event_id);
  const prevDepths = await getEvents(db, prevIds);
  const depth = Math.max(0, ...prevIds.map((id) => prevDepths.get(id)?.depth ?? 0)) + 1;
  const base: PDU = {
    room_id: roomId,
    sender,
    origin_server_ts: draft.ts ?? Date.now(),
    type: draft.type,
    content: draft.content,
    prev_events: [],
    auth_events: [],
    depth,
  };
  if (draft.state_key !== undefined) base.state_key = draft.state_key;
  const authIds = (await currentState(db, roomId, authEventSelection(rv, base))).map((r) => r.event_id);
  if (rv.eventIdListsOnly) {
    base.prev_events = prevIds;
    base.auth_events = authIds;
  } else {
    const refs = await getEvents(db, [...prevIds, ...authIds]);
    const pair = (id: string): [string, JsonObject] => [id, { sha256: String((refs.get(id)?.json['hashes'] as JsonObject | undefined)?.['sha256'] ?? '') }];
    base.prev_events = prevIds.map(pair);
    base.auth_events = authIds.map(pair);
    base.origin = remote.serverName;
    base.event_id = newV1EventId(remote.serverName);
  }
  return hashAndSignEvent(base, rv.id, remote.serverName, remote.test.server.ctx.keys.current) as PDU;
}

/** Stores a PDU received from elsewhere on `host`, as its pipeline stores any such event. */
export async function persistRemote(host: FederationServer, roomId: string, pdu: PDU, opts: { outlier?: boolean } = {}): Promise<PersistedEvent> {
  const { pipeline } = host.test.server.ctx.services.rooms;
  return pipeline.roomTransaction(roomId, async (tx) => pipeline.persister.persist(tx, await pipeline.room(tx, roomId), pdu, opts));
}

/** `userId` (of `remote`) joins `roomId` on `host`; the join's event id. Throws if the host rejected or soft-failed it. */
export async function joinRemote(host: FederationServer, remote: FederationServer, roomId: string, userId: string): Promise<string> {
  return sendRemote(host, remote, roomId, userId, { type: 'm.room.member', state_key: userId, content: { membership: 'join' } });
}

/** Builds and stores an event of a remote user; its id. Throws if the host rejected or soft-failed it. */
export async function sendRemote(host: FederationServer, remote: FederationServer, roomId: string, sender: string, draft: RemoteDraft): Promise<string> {
  const stored = await persistRemote(host, roomId, await remoteEvent(host, remote, roomId, sender, draft));
  if (stored.rejected !== undefined || stored.softFailed) throw new Error(`${draft.type} of ${sender} was not accepted: ${stored.rejected ?? 'soft-failed'}`);
  return stored.eventId;
}

/** The local user `inviter` invites `invitee` (of another server) on `host`: a local event only. */
export async function inviteRemote(host: FederationServer, roomId: string, inviter: string, invitee: string): Promise<string> {
  const { pipeline } = host.test.server.ctx.services.rooms;
  const stored = await pipeline.roomTransaction(roomId, async (tx) =>
    pipeline.persist(tx, await pipeline.room(tx, roomId), inviter, { type: 'm.room.member', state_key: invitee, content: { membership: 'invite' } }),
  );
  return stored.eventId;
}
