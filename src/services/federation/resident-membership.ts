/**
 * This server as the resident of a room another server's user wants to
 * join, leave or knock on: `make_join`/`make_leave`/`make_knock` answer a
 * template event built on the room's current state (its prev and auth
 * events, depth) once the auth rules would allow it, and
 * `send_join`/`send_leave`/`send_knock` take the event back signed by the
 * user's server, check it as any received PDU (FederationEvents) and answer
 * what the joiner needs: the state before the join and its auth chain.
 *
 * Room version negotiation as the spec has it: make_join/make_knock name
 * the versions the joining server supports (`ver`, none meaning v1 only);
 * a room of another version answers 400 M_INCOMPATIBLE_ROOM_VERSION with
 * the room's version. Restricted joins: when the user is not invited and
 * the room's join rule is `restricted`/`knock_restricted`, the template
 * names one of our users able to invite (`join_authorised_via_users_server`)
 * once the user is joined to one of the rooms the rule allows, as we see
 * it; send_join then adds our signature.
 */
import type { Kysely } from 'kysely';
import { addEventSignature } from '../../core/event-signing.js';
import { serverNameOf } from '../../core/event-format.js';
import { isJsonObject } from '../../core/json-values.js';
import { allowedRoomIds } from '../rooms/join-rule-allow.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { roomVersion, type RoomVersion } from '../../core/room-versions.js';
import { userPowerLevel, namedLevel } from '../../core/auth/index.js';
import { MatrixError, forbidden } from '../../matrix-error.js';
import type { Db } from '../../storage/db.js';
import { authChainIds, getEvents } from '../../storage/events.js';
import { getRoom, type RoomRow } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { currentState, roomMembers, stateAtGroup } from '../../storage/state.js';
import type { EventPipeline } from '../rooms/event-pipeline.js';
import { prejoinState } from '../rooms/prejoin-state.js';
import type { ServerKeys } from '../server-keys.js';
import type { FederationEvents } from './inbound-events.js';
import { assertServerAllowed } from './server-access.js';

export type RemoteMembership = 'join' | 'leave' | 'knock';

export interface ResidentMembershipDeps {
  db: Kysely<Schema>;
  pipeline: EventPipeline;
  events: FederationEvents;
  serverName: string;
  keys: ServerKeys;
}

export interface SendJoinAnswer {
  origin: string;
  state: Record<string, unknown>[];
  auth_chain: Record<string, unknown>[];
  event: Record<string, unknown>;
  members_omitted: boolean;
  servers_in_room: string[];
}

const RESTRICTED_RULES = new Set(['restricted', 'knock_restricted']);

export class ResidentMembership {
  constructor(private readonly d: ResidentMembershipDeps) {}

  /** The template for `userId` (of `origin`) to join, leave or knock on `roomId`. */
  async make(
    origin: string,
    roomId: string,
    userId: string,
    membership: RemoteMembership,
    versions: readonly string[] | undefined,
  ): Promise<{ room_version: string; event: JsonObject }> {
    if (serverNameOf(userId) !== origin) throw forbidden('User not from origin');
    const room = await this.hostedRoom(roomId);
    await assertServerAllowed(this.d.db, roomId, origin);
    const rv = roomVersion(room.room_version)!;
    if (versions !== undefined && !versions.includes(rv.id)) {
      throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', 'Your homeserver does not support the features required to interact with this room', { room_version: rv.id });
    }
    if (membership === 'knock' && !rv.knockJoinRule)
      throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${rv.id} does not support knocking`, { room_version: rv.id });
    const content: JsonObject = { membership };
    if (membership === 'join') {
      const authoriser = await this.restrictedJoinAuthoriser(this.d.db, room, rv, userId);
      if (authoriser) content['join_authorised_via_users_server'] = authoriser;
    }
    const built = await this.d.pipeline.builder.build(this.d.db, room, rv, userId, { type: 'm.room.member', state_key: userId, content }, Date.now());
    const { hashes: _h, signatures: _s, event_id: _id, origin: _o, ...template } = built.pdu;
    const refused = await this.d.pipeline.persister.checkAgainstCurrentState(this.d.db, room, { ...built.pdu, sender: userId });
    if (refused !== undefined) throw forbidden(refused);
    return { room_version: rv.id, event: template as JsonObject };
  }

  /**
   * The signed event back from `origin`: checked, persisted, and answered
   * (for a join, the state before it and its auth chain).
   */
  private async send(origin: string, roomId: string, eventId: string, membership: RemoteMembership, raw: unknown): Promise<{ pdu: PDU; stateGroupBefore: number | null }> {
    const room = await this.hostedRoom(roomId);
    await assertServerAllowed(this.d.db, roomId, origin);
    const rv = roomVersion(room.room_version)!;
    if (!isJsonObject(raw)) throw new MatrixError(400, 'M_BAD_JSON', 'The event must be a JSON object');
    // A restricted join naming one of our users needs our signature, which we add here: add it before the
    // signatures are checked (the verifier requires the authorising server's), the origin's still checked.
    const content = isJsonObject(raw['content']) ? raw['content'] : {};
    const via = content['join_authorised_via_users_server'];
    const cosign = membership === 'join' && content['membership'] === 'join' && typeof via === 'string' && via.includes(':') && serverNameOf(via) === this.d.serverName;
    let toVerify: unknown = raw;
    try {
      if (cosign) toVerify = addEventSignature(raw as unknown as PDU, rv.id, this.d.serverName, this.d.keys.current);
    } catch {
      throw new MatrixError(400, 'M_BAD_JSON', 'The event cannot be signed');
    }
    const v = await this.d.events.verifyOne(toVerify, rv);
    if (!v.ok) throw new MatrixError(400, 'M_BAD_JSON', v.reason);
    const pdu = v.pdu;
    if (v.eventId !== eventId) throw new MatrixError(400, 'M_BAD_JSON', 'Event ID does not match the one in the path');
    if (pdu.room_id !== roomId) throw new MatrixError(400, 'M_BAD_JSON', 'Event room ID does not match the one in the path');
    if (pdu.type !== 'm.room.member' || pdu.state_key !== pdu.sender) throw new MatrixError(400, 'M_BAD_JSON', `Not an ${membership} event`);
    if (pdu.content['membership'] !== membership) throw new MatrixError(400, 'M_BAD_JSON', `Not an ${membership} event`);
    if (serverNameOf(pdu.sender) !== origin) throw forbidden('The sender is not from the origin server');
    const signed = pdu;
    const stored = await this.d.events.place(origin, roomId, rv, { eventId, pdu: signed }, { fillGaps: false, sendOnBehalfOf: origin });
    const placed = stored ?? (await this.d.events.placement(eventId));
    if (placed?.rejected !== undefined) throw forbidden(placed.rejected);
    return { pdu: signed, stateGroupBefore: placed?.stateGroupBefore ?? null };
  }

  /** send_join: the join stored, the state before it and its auth chain answered. */
  async sendJoin(origin: string, roomId: string, eventId: string, raw: unknown): Promise<SendJoinAnswer> {
    return this.joinAnswer(roomId, await this.send(origin, roomId, eventId, 'join', raw));
  }

  /** send_leave: the leave stored. */
  async sendLeave(origin: string, roomId: string, eventId: string, raw: unknown): Promise<void> {
    await this.send(origin, roomId, eventId, 'leave', raw);
  }

  /** send_knock: the knock stored, the room's stripped state answered. */
  async sendKnock(origin: string, roomId: string, eventId: string, raw: unknown): Promise<{ knock_room_state: Record<string, unknown>[] }> {
    await this.send(origin, roomId, eventId, 'knock', raw);
    return { knock_room_state: (await prejoinState(this.d.db, roomId)) as unknown as Record<string, unknown>[] };
  }

  /** What send_join answers: the state before the join, its auth chain, the servers in the room. */
  private async joinAnswer(roomId: string, joined: { pdu: PDU; stateGroupBefore: number | null }): Promise<SendJoinAnswer> {
    const state = joined.stateGroupBefore === null ? new Map<string, string>() : await stateAtGroup(this.d.db, joined.stateGroupBefore);
    const stateIds = [...state.values()];
    const chainIds = (await authChainIds(this.d.db, stateIds)).filter((id) => !state.has(id));
    const events = await getEvents(this.d.db, [...stateIds, ...chainIds]);
    const pdus = (ids: string[]) => ids.map((id) => events.get(id)?.json).filter((e): e is Record<string, unknown> => e !== undefined);
    const members = await roomMembers(this.d.db, roomId, ['join']);
    const servers = [...new Set(members.map((m) => serverNameOf(m.user_id)).filter((s): s is string => s !== undefined))];
    return {
      origin: this.d.serverName,
      state: pdus(stateIds),
      auth_chain: pdus([...new Set(chainIds)]),
      event: joined.pdu as unknown as Record<string, unknown>,
      members_omitted: false,
      servers_in_room: servers,
    };
  }

  /** A room this server is joined to, else 404 as Synapse answers. */
  private async hostedRoom(roomId: string): Promise<RoomRow> {
    const room = await getRoom(this.d.db, roomId);
    const rv = room ? roomVersion(room.room_version) : undefined;
    if (!room || !rv) throw new MatrixError(404, 'M_NOT_FOUND', 'Unknown room');
    const ours = (await roomMembers(this.d.db, roomId, ['join'])).some((m) => serverNameOf(m.user_id) === this.d.serverName);
    if (!ours) throw new MatrixError(404, 'M_NOT_FOUND', 'Unknown room');
    return room;
  }

  /**
   * For a user who is neither joined nor invited to a restricted room: one
   * of our joined users who may invite, once the user is joined to a room
   * the rule allows; undefined when the rule is not restricted or the user
   * needs no authoriser. 403 when no allowed room has them.
   */
  private async restrictedJoinAuthoriser(db: Db, room: RoomRow, rv: RoomVersion, userId: string): Promise<string | undefined> {
    if (!rv.restrictedJoinRule) return undefined;
    const rows = await currentState(db, room.room_id, [
      ['m.room.join_rules', ''],
      ['m.room.member', userId],
      ['m.room.power_levels', ''],
      ['m.room.create', ''],
    ]);
    const events = await getEvents(
      db,
      rows.map((r) => r.event_id),
    );
    const content = (type: string, key = '') => {
      const r = rows.find((x) => x.type === type && x.state_key === key);
      const c = r ? events.get(r.event_id)?.json['content'] : undefined;
      return isJsonObject(c) ? c : undefined;
    };
    const rule = content('m.room.join_rules')?.['join_rule'];
    if (typeof rule !== 'string' || !RESTRICTED_RULES.has(rule)) return undefined;
    const current = content('m.room.member', userId)?.['membership'];
    if (current === 'join' || current === 'invite') return undefined;
    const allowedRooms = allowedRoomIds(content('m.room.join_rules'));
    let inAllowed = false;
    for (const other of allowedRooms) {
      const [m] = await currentState(db, other, [['m.room.member', userId]]);
      if (m?.membership === 'join') inAllowed = true;
    }
    if (!inAllowed) {
      if (rule === 'knock_restricted') return undefined;
      throw forbidden('You do not belong to any of the required rooms/spaces to join this room.');
    }
    const pdu = (type: string) => {
      const r = rows.find((x) => x.type === type && x.state_key === '');
      return r ? (events.get(r.event_id)?.json as unknown as PDU | undefined) : undefined;
    };
    const pl = pdu('m.room.power_levels');
    const create = pdu('m.room.create');
    const inviteLevel = namedLevel(rv, pl, 'invite');
    for (const m of await roomMembers(db, room.room_id, ['join'])) {
      if (serverNameOf(m.user_id) !== this.d.serverName) continue;
      if (userPowerLevel(rv, m.user_id, pl, create) >= inviteLevel) return m.user_id;
    }
    throw new MatrixError(400, 'M_UNABLE_TO_GRANT_JOIN', 'No user of this server in the room can authorise the join');
  }
}
