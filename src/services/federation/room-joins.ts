/**
 * Where a client's join goes: to the room here, or over federation.
 *
 * A room alias is resolved first (ours from the database, another
 * server's with /query/directory), and its servers join the candidates.
 * The join is local when this server is in the room (a user of ours is
 * joined), or when it holds the room and knows no other server to ask.
 * Otherwise it is a remote join (make_join/send_join) through, in order:
 * the request's `via`/`server_name`, the alias's servers, the server of an
 * invite the user holds, and (v1–v11 ids) the room id's own server.
 * Leaving a room we are not in (an invite from another server) goes
 * through the inviting server.
 */
import type { Kysely } from 'kysely';
import { serverNameOf } from '../../core/event-format.js';
import type { JsonObject } from '../../core/pdu.js';
import { MatrixError } from '../../matrix-error.js';
import type { Requester } from '../auth.js';
import { joinedServers } from '../../storage/memberships.js';
import { getRoom } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { currentState } from '../../storage/state.js';
import { getEvent } from '../../storage/events.js';
import type { AliasService } from '../rooms/aliases.js';
import type { RoomService } from '../rooms/room-service.js';
import type { FederationInvites } from './invites.js';
import type { RemoteMembership } from './remote-membership.js';

export interface RoomJoinsDeps {
  db: Kysely<Schema>;
  rooms: RoomService;
  aliases: AliasService;
  remote: RemoteMembership;
  invites: Pick<FederationInvites, 'reject' | 'knock'>;
  serverName: string;
}

export class RoomJoins {
  constructor(private readonly d: RoomJoinsDeps) {}

  /** POST /join/{roomIdOrAlias} and /rooms/{roomId}/join: joins and answers the room id. */
  async join(requester: Requester, idOrAlias: string, opts: { servers?: readonly string[]; content?: JsonObject } = {}): Promise<{ roomId: string }> {
    const { roomId, servers } = await this.target(idOrAlias, opts.servers ?? []);
    const content = opts.content ?? {};
    const room = await getRoom(this.d.db, roomId);
    const inRoom = room !== undefined && (await joinedServers(this.d.db, roomId)).includes(this.d.serverName);
    const candidates = [...servers, ...(await this.inviteServers(roomId, requester.userId))];
    const idServer = roomId.includes(':') ? serverNameOf(roomId) : undefined;
    if (idServer !== undefined) candidates.push(idServer);
    const remote = [...new Set(candidates)].filter((s) => s !== this.d.serverName);
    if (inRoom || (room !== undefined && remote.length === 0)) {
      await this.d.rooms.updateMembership(requester, roomId, requester.userId, 'join', content);
      return { roomId };
    }
    if (requester.isGuest) throw new MatrixError(403, 'M_FORBIDDEN', 'Guests cannot join rooms over federation');
    if (remote.length === 0) throw new MatrixError(404, 'M_NOT_FOUND', `Unknown room ${roomId}: no known servers`);
    await this.d.remote.join(requester.userId, roomId, remote, content);
    return { roomId };
  }

  /**
   * POST /knock/{roomIdOrAlias}: here when this server is in the room (or
   * holds it and knows no other server); otherwise over federation
   * (make_knock/send_knock) through `via`, the alias's servers and the room
   * id's server, the knock then stored out of band.
   */
  async knock(requester: Requester, idOrAlias: string, opts: { servers?: readonly string[]; content?: JsonObject } = {}): Promise<{ roomId: string }> {
    const { roomId, servers } = await this.target(idOrAlias, opts.servers ?? []);
    const content = opts.content ?? {};
    const room = await getRoom(this.d.db, roomId);
    const inRoom = room !== undefined && room.current_state_group !== null && (await joinedServers(this.d.db, roomId)).includes(this.d.serverName);
    const candidates = [...servers];
    const idServer = roomId.includes(':') ? serverNameOf(roomId) : undefined;
    if (idServer !== undefined) candidates.push(idServer);
    const remote = [...new Set(candidates)].filter((s) => s !== this.d.serverName);
    if (inRoom || (room !== undefined && room.current_state_group !== null && remote.length === 0)) {
      await this.d.rooms.updateMembership(requester, roomId, requester.userId, 'knock', content);
      return { roomId };
    }
    if (requester.isGuest) throw new MatrixError(403, 'M_FORBIDDEN', 'Guests cannot knock');
    if (remote.length === 0) throw new MatrixError(404, 'M_NOT_FOUND', `Unknown room ${roomId}: no known servers`);
    await this.d.invites.knock(requester.userId, roomId, remote, content);
    return { roomId };
  }

  /**
   * POST /rooms/{roomId}/leave: here when this server is in the room; an
   * invite or knock of a room we are not in is rejected through the room's
   * servers (FederationInvites.reject).
   */
  async leave(requester: Requester, roomId: string, content: JsonObject = {}): Promise<void> {
    const room = await getRoom(this.d.db, roomId);
    if (room && !(await joinedServers(this.d.db, roomId)).includes(this.d.serverName)) {
      const [row] = await currentState(this.d.db, roomId, [['m.room.member', requester.userId]]);
      if (row?.membership === 'invite' || row?.membership === 'knock') {
        const ev = await getEvent(this.d.db, row.event_id);
        if (ev && (serverNameOf(ev.sender) !== this.d.serverName || room.current_state_group === null)) {
          await this.d.invites.reject(requester.userId, roomId, content);
          return;
        }
      }
    }
    await this.d.rooms.updateMembership(requester, roomId, requester.userId, 'leave', content);
  }

  /** The room id and the servers an alias names (none for a room id). */
  private async target(idOrAlias: string, via: readonly string[]): Promise<{ roomId: string; servers: string[] }> {
    if (idOrAlias.startsWith('#')) {
      const resolved = await this.d.aliases.resolve(idOrAlias);
      return { roomId: resolved.room_id, servers: [...via, ...resolved.servers] };
    }
    if (!idOrAlias.startsWith('!') || idOrAlias.length < 2) throw new MatrixError(400, 'M_INVALID_PARAM', `${idOrAlias} was not legal room ID or room alias`);
    return { roomId: idOrAlias, servers: [...via] };
  }

  /** The inviting server of an invite the user holds for the room. */
  private async inviteServers(roomId: string, userId: string): Promise<string[]> {
    const [row] = await currentState(this.d.db, roomId, [['m.room.member', userId]]);
    if (row?.membership !== 'invite') return [];
    const ev = await getEvent(this.d.db, row.event_id);
    const server = ev ? serverNameOf(ev.sender) : undefined;
    return server ? [server] : [];
  }
}
