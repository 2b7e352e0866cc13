/**
 * The published room directory: a room's visibility in it, and
 * /publicRooms.
 *
 * - Changing a room's visibility needs Synapse's "can change the room
 *   list" (server admin, or a joined member with the power to send
 *   `m.room.canonical_alias`); publishing also needs
 *   `room_list_publication_rules` to allow it. Guests may not.
 * - /publicRooms lists published rooms the way Synapse does: largest joined
 *   membership first, room id breaking ties; at most 100 per page; only
 *   rooms with joined members that a stranger can join, knock on or read.
 *   Pages are linked by opaque tokens holding the last room's (members,
 *   room id) and a direction. `total_room_count_estimate` counts the rooms
 *   shown without the search term, as Synapse counts.
 * - `enable_room_list_search: false` empties the list and refuses
 *   publishing.
 */
import type { Kysely } from 'kysely';
import type { JsonObject } from '../../core/pdu.js';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { aliasesForRoom } from '../../storage/aliases.js';
import { countPublicRooms, publicRooms, roomVisibility, type PublicRoomRow } from '../../storage/directory.js';
import { setRoomPublic } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import type { Requester } from '../auth.js';
import { canChangeRoomList, currentStateContent } from './aliases.js';
import { publishingAllowed, type DirectorySettings } from './directory-rules.js';

/** Synapse's MAX_PUBLIC_ROOMS_IN_RESPONSE. */
export const MAX_PUBLIC_ROOMS = 100;

export interface PublicRoomsRequest {
  limit?: number;
  since?: string;
  search?: string;
  roomTypes?: (string | null)[];
  /** An application service's network list; Axon has none, so such a list is empty. */
  thirdPartyInstanceId?: string;
}

interface PageToken {
  joinedMembers: number;
  roomId: string;
  forwards: boolean;
}

function encodeToken(t: PageToken): string {
  return Buffer.from(JSON.stringify([t.forwards ? 'f' : 'b', t.joinedMembers, t.roomId])).toString('base64url');
}

function decodeToken(s: string): PageToken {
  const bad = () => new MatrixError(400, 'M_INVALID_PARAM', 'Invalid since token');
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(v) || v.length !== 3 || (v[0] !== 'f' && v[0] !== 'b') || !Number.isSafeInteger(v[1]) || typeof v[2] !== 'string') throw bad();
  return { forwards: v[0] === 'f', joinedMembers: v[1] as number, roomId: v[2] };
}

function entry(r: PublicRoomRow): JsonObject {
  const e: JsonObject = { room_id: r.room_id };
  if (r.name !== null) e['name'] = r.name;
  if (r.topic !== null) e['topic'] = r.topic;
  if (r.canonical_alias !== null) e['canonical_alias'] = r.canonical_alias;
  e['num_joined_members'] = r.joined_members;
  if (r.avatar_url !== null) e['avatar_url'] = r.avatar_url;
  e['world_readable'] = r.history_visibility === 'world_readable';
  e['guest_can_join'] = r.guest_access === 'can_join';
  if (r.join_rule !== null) e['join_rule'] = r.join_rule;
  if (r.room_type !== null) e['room_type'] = r.room_type;
  return e;
}

/** Asks another server for its room directory (the federation client's side; rooms/ does not import federation/). */
export type RemoteDirectory = (server: string, req: PublicRoomsRequest) => Promise<JsonObject>;

export class DirectoryService {
  constructor(
    private readonly db: Kysely<Schema>,
    readonly settings: DirectorySettings,
    private readonly remote?: RemoteDirectory,
  ) {}

  /** GET and POST /publicRooms?server=: another server's list, asked over federation (404 when federation is not wired). */
  async remotePublicRooms(server: string, req: PublicRoomsRequest): Promise<JsonObject> {
    if (!this.remote) throw new MatrixError(404, 'M_NOT_FOUND', `Cannot fetch the room directory of ${server}`);
    return this.remote(server, req);
  }

  /** GET /directory/list/room/{roomId}. */
  async visibility(roomId: string): Promise<'public' | 'private'> {
    const v = await roomVisibility(this.db, roomId);
    if (v === undefined) throw new MatrixError(404, 'M_NOT_FOUND', 'Room not found');
    return v ? 'public' : 'private';
  }

  /** PUT /directory/list/room/{roomId}. */
  async setVisibility(requester: Requester, roomId: string, visibility: 'public' | 'private'): Promise<void> {
    if (requester.isGuest) throw forbidden('Guests cannot edit the published room list');
    if (visibility === 'public' && !this.settings.enableRoomListSearch) throw forbidden('This user is not permitted to publish rooms to the room list');
    if ((await roomVisibility(this.db, roomId)) === undefined) throw new MatrixError(404, 'M_NOT_FOUND', 'Room not found');
    if (!(await canChangeRoomList(this.db, requester, roomId))) {
      throw forbidden('This server requires you to be a moderator in the room to edit its room list entry');
    }
    if (visibility === 'public') {
      const aliases = await aliasesForRoom(this.db, roomId);
      const canonical = (await currentStateContent(this.db, roomId, 'm.room.canonical_alias'))?.['alias'];
      if (typeof canonical === 'string') aliases.push(canonical);
      if (!publishingAllowed(this.settings, requester, roomId, aliases)) throw forbidden('Not allowed to publish room');
    }
    await this.db.transaction().execute((tx) => setRoomPublic(tx, roomId, visibility === 'public'));
  }

  /** GET and POST /publicRooms for this server's own list. */
  async publicRooms(req: PublicRoomsRequest): Promise<JsonObject> {
    if (!this.settings.enableRoomListSearch || req.thirdPartyInstanceId !== undefined) return { chunk: [], total_room_count_estimate: 0 };
    const limit = req.limit === undefined || req.limit === 0 || req.limit > MAX_PUBLIC_ROOMS ? MAX_PUBLIC_ROOMS : req.limit;
    const token = req.since ? decodeToken(req.since) : undefined;
    const forwards = token?.forwards ?? true;
    const rows = await publicRooms(this.db, {
      search: req.search,
      roomTypes: req.roomTypes,
      bound: token ? { joinedMembers: token.joinedMembers, roomId: token.roomId } : undefined,
      forwards,
      limit: limit + 1,
    });
    const more = rows.length > limit;
    const shown = rows.slice(0, limit);
    // Backwards pages come nearest-first from the database; the chunk is always largest first.
    const chunkRows = forwards ? shown : [...shown].reverse();
    const out: JsonObject = { chunk: chunkRows.map(entry) };
    const top = chunkRows[0];
    const bottom = chunkRows[chunkRows.length - 1];
    const tokenOf = (r: PublicRoomRow, fwd: boolean) => encodeToken({ joinedMembers: r.joined_members, roomId: r.room_id, forwards: fwd });
    if (forwards) {
      if (token) out['prev_batch'] = top ? tokenOf(top, false) : encodeToken({ joinedMembers: 0, roomId: '', forwards: false });
      if (more && bottom) out['next_batch'] = tokenOf(bottom, true);
    } else if (top && bottom) {
      out['next_batch'] = tokenOf(bottom, true);
      if (more) out['prev_batch'] = tokenOf(top, false);
    }
    out['total_room_count_estimate'] = await countPublicRooms(this.db, { roomTypes: req.roomTypes });
    return out;
  }
}
