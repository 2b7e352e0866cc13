/**
 * Room aliases (`#name:server`): creating, resolving, listing and deleting
 * them, with Synapse's rules.
 *
 * - Creating: the alias must be well formed (400 M_INVALID_PARAM), ours
 *   (400 M_INVALID_PARAM), at most 255 bytes, allowed by
 *   `alias_creation_rules` (403), and the creator must be in the room when
 *   `require_membership_for_aliases` (the default) unless a server admin
 *   (403). A taken alias is 409 M_ROOM_IN_USE.
 * - Deleting: the alias's creator, a server admin, or a room member with
 *   the power to send `m.room.canonical_alias` may delete it. If the alias
 *   was the room's canonical alias or one of its alt_aliases, a new
 *   `m.room.canonical_alias` without it is sent (best effort, as Synapse).
 * - Resolving another server's alias asks that server (`/query/directory`):
 *   its 404 is ours, a server that cannot be reached is 502.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { RemoteQueries } from '../federation/remote-queries.js';
import { sendLevel, userPowerLevel } from '../../core/auth/index.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { requireRoomVersion } from '../../core/room-versions.js';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { aliasesForRoom, deleteAlias, getAlias, insertAlias } from '../../storage/aliases.js';
import { getEvents } from '../../storage/events.js';
import { joinedServers } from '../../storage/memberships.js';
import { getRoom } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { currentState } from '../../storage/state.js';
import type { Requester } from '../auth.js';
import { checkLength, checkLocalpart, type ParsedAlias, parseRoomAliasOrThrow } from './alias-syntax.js';
import { aliasCreationAllowed, type DirectorySettings } from './directory-rules.js';
import type { RoomService } from './room-service.js';
import { withSubsystemLogger } from '../../logger.js';
import type { Db } from '../../storage/db.js';

/** A state event's content from the room's current state, or undefined. */
export async function currentStateContent(db: Db, roomId: string, type: string, stateKey = ''): Promise<JsonObject | undefined> {
  const [row] = await currentState(db, roomId, [[type, stateKey]]);
  if (!row) return undefined;
  const e = (await getEvents(db, [row.event_id])).get(row.event_id);
  return e?.json['content'] as JsonObject | undefined;
}

/**
 * Synapse's check for changing the room's directory entry or deleting its
 * aliases: server admins may; others must be joined (403 otherwise) and
 * have the power to send `m.room.canonical_alias`.
 */
export async function canChangeRoomList(db: Db, requester: Requester, roomId: string): Promise<boolean> {
  if (requester.isAdmin) return true;
  const room = await getRoom(db, roomId);
  const rows = await currentState(db, roomId, [
    ['m.room.member', requester.userId],
    ['m.room.power_levels', ''],
    ['m.room.create', ''],
  ]);
  const member = rows.find((r) => r.type === 'm.room.member');
  if (!room || member?.membership !== 'join') throw forbidden(`User ${requester.userId} not in room ${roomId}`);
  const events = await getEvents(
    db,
    rows.map((r) => r.event_id),
  );
  const byType = (t: string) => {
    const row = rows.find((r) => r.type === t);
    return row ? (events.get(row.event_id)?.json as PDU | undefined) : undefined;
  };
  const rv = requireRoomVersion(room.room_version);
  const pl = byType('m.room.power_levels');
  return userPowerLevel(rv, requester.userId, pl, byType('m.room.create')) >= sendLevel(rv, pl, 'm.room.canonical_alias', true);
}

export interface AliasServiceDeps {
  db: Kysely<Schema>;
  rooms: RoomService;
  serverName: string;
  directory: DirectorySettings;
  /** Other servers' aliases, over federation. */
  remote?: RemoteQueries;
  logger?: Logger;
}

export class AliasService {
  constructor(private readonly d: AliasServiceDeps) {
    this.d = withSubsystemLogger(d, 'axon.rooms');
  }

  isLocal(p: ParsedAlias): boolean {
    return p.server === this.d.serverName;
  }

  /** GET /directory/room/{alias}: the room and the servers to join it through (ours first). */
  async resolve(aliasStr: string): Promise<{ room_id: string; servers: string[] }> {
    const p = parseRoomAliasOrThrow(aliasStr);
    const notFound = () => new MatrixError(404, 'M_NOT_FOUND', `Room alias ${p.alias} not found`);
    if (!this.isLocal(p)) {
      if (!this.d.remote) throw notFound();
      return this.d.remote.directory(p.alias, p.server, notFound);
    }
    return this.resolveLocal(p.alias);
  }

  /** A local alias (what /query/directory answers other servers): the room and the servers in it, ours first. */
  async resolveLocal(aliasStr: string): Promise<{ room_id: string; servers: string[] }> {
    const p = parseRoomAliasOrThrow(aliasStr);
    const notFound = () => new MatrixError(404, 'M_NOT_FOUND', `Room alias ${p.alias} not found`);
    if (!this.isLocal(p)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Room alias is not hosted on this homeserver');
    const row = await getAlias(this.d.db, p.alias);
    if (!row) throw notFound();
    const servers = new Set(await joinedServers(this.d.db, row.room_id));
    servers.delete(this.d.serverName);
    return { room_id: row.room_id, servers: [this.d.serverName, ...[...servers].sort()] };
  }

  /** PUT /directory/room/{alias}. */
  async create(requester: Requester, aliasStr: string, roomId: string, now = Date.now()): Promise<void> {
    const p = parseRoomAliasOrThrow(aliasStr);
    if (!(await getRoom(this.d.db, roomId))) throw new MatrixError(400, 'M_UNKNOWN', 'Room does not exist');
    checkLength(p.alias);
    if (!requester.isAdmin) {
      if (this.d.directory.requireMembershipForAliases) {
        const [m] = await currentState(this.d.db, roomId, [['m.room.member', requester.userId]]);
        if (m?.membership !== 'join') throw forbidden('You must be in the room to create an alias for it');
      }
      if (!aliasCreationAllowed(this.d.directory, requester.userId, roomId, p.alias)) throw forbidden('Not allowed to create alias');
    }
    checkLocalpart(p.localpart);
    if (!this.isLocal(p)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Room alias must be local');
    const added = await this.d.db.transaction().execute((tx) => insertAlias(tx, { alias: p.alias, roomId, creator: requester.userId, now }));
    if (!added) throw new MatrixError(409, 'M_ROOM_IN_USE', `Room alias ${p.alias} already exists`);
  }

  /** DELETE /directory/room/{alias}; returns the room it pointed at. */
  async delete(requester: Requester, aliasStr: string): Promise<string> {
    const p = parseRoomAliasOrThrow(aliasStr);
    if (!this.isLocal(p)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Room alias must be local');
    const row = await getAlias(this.d.db, p.alias);
    if (!row) throw new MatrixError(404, 'M_NOT_FOUND', `Room alias ${p.alias} not found`);
    const allowed = row.creator === requester.userId || (await canChangeRoomList(this.d.db, requester, row.room_id));
    if (!allowed) throw forbidden("You don't have permission to delete the alias.");
    const roomId = await this.d.db.transaction().execute((tx) => deleteAlias(tx, p.alias));
    if (roomId === undefined) throw new MatrixError(404, 'M_NOT_FOUND', `Room alias ${p.alias} not found`);
    await this.dropFromCanonicalAlias(requester, roomId, p.alias);
    return roomId;
  }

  /** GET /rooms/{roomId}/aliases: for members (or anyone when the room is world-readable) and server admins. */
  async listForRoom(requester: Requester, roomId: string): Promise<string[]> {
    if (!requester.isAdmin) {
      const [m] = await currentState(this.d.db, roomId, [['m.room.member', requester.userId]]);
      if (m?.membership !== 'join') {
        const hv = await currentStateContent(this.d.db, roomId, 'm.room.history_visibility');
        if (hv?.['history_visibility'] !== 'world_readable') throw forbidden(`User ${requester.userId} not in room ${roomId}, and room previews are disabled`);
      }
    }
    return aliasesForRoom(this.d.db, roomId);
  }

  private async dropFromCanonicalAlias(requester: Requester, roomId: string, alias: string): Promise<void> {
    const content = await currentStateContent(this.d.db, roomId, 'm.room.canonical_alias');
    if (!content) return;
    const next: JsonObject = { ...content };
    let changed = false;
    if (content['alias'] === alias) {
      delete next['alias'];
      changed = true;
    }
    const alt = content['alt_aliases'];
    if (Array.isArray(alt) && alt.includes(alias)) {
      const kept = alt.filter((a) => a !== alias);
      if (kept.length > 0) next['alt_aliases'] = kept;
      else delete next['alt_aliases'];
      changed = true;
    }
    if (!changed) return;
    try {
      await this.d.rooms.send(requester, roomId, { type: 'm.room.canonical_alias', state_key: '', content: next }, undefined, { ratelimit: false });
    } catch (err) {
      if (!(err instanceof MatrixError) || err.statusCode !== 403) throw err;
      this.d.logger?.info({ room_id: roomId, alias }, `could not update the canonical alias after deleting an alias: ${err.message}`);
    }
  }
}
