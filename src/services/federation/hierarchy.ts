/**
 * GET /_matrix/federation/v1/hierarchy/{roomId}: a space (or any room) and
 * its children as this server sees them, for another server's /hierarchy.
 *
 * As the spec and Synapse have it: the room must be accessible to the
 * asking server (its join rule is public, knock or knock_restricted, its
 * history world_readable, a user of that server is joined, or, for a
 * restricted room, to one of the rooms it allows; then it is shown with its
 * `allowed_room_ids`), else 404 M_NOT_FOUND. The room
 * comes with its `children_state` (the stripped m.space.child events with a
 * `via`; only `suggested` ones with `suggested_only`); children we hold and
 * the server may see are in `children`, the others we hold in
 * `inaccessible_children`. Children we do not hold are left for the asking
 * server to find elsewhere.
 */
import type { Kysely } from 'kysely';
import { serverNameOf } from '../../core/event-format.js';
import { isJsonObject } from '../../core/json-values.js';
import { allowedRoomIds } from '../rooms/join-rule-allow.js';
import { MatrixError } from '../../matrix-error.js';
import { getEvents } from '../../storage/events.js';
import { getRoom } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { currentState, roomMembers } from '../../storage/state.js';
import { assertServerAllowed } from './server-access.js';

const SUMMARY_TYPES = [
  'm.room.create',
  'm.room.name',
  'm.room.topic',
  'm.room.avatar',
  'm.room.canonical_alias',
  'm.room.join_rules',
  'm.room.history_visibility',
  'm.room.guest_access',
  'm.room.encryption',
];
const OPEN_RULES = new Set(['public', 'knock', 'knock_restricted']);
/** Children of one room looked at, at most (Synapse's MAX_ROOMS_PER_SPACE). */
const MAX_CHILDREN = 50;

type Json = Record<string, unknown>;

export class FederationHierarchy {
  constructor(private readonly db: Kysely<Schema>) {}

  async hierarchy(origin: string, roomId: string, suggestedOnly: boolean): Promise<{ room: Json; children: Json[]; inaccessible_children: string[] }> {
    const root = await this.summary(origin, roomId, suggestedOnly);
    if (!root) throw new MatrixError(404, 'M_NOT_FOUND', 'Unknown room: ' + roomId);
    await assertServerAllowed(this.db, roomId, origin);
    const children: Json[] = [];
    const inaccessible: string[] = [];
    for (const child of (root['children_state'] as Json[]).slice(0, MAX_CHILDREN)) {
      const id = child['state_key'] as string;
      if (!(await getRoom(this.db, id))) continue;
      const s = await this.summary(origin, id, suggestedOnly);
      if (s) children.push(s);
      else inaccessible.push(id);
    }
    return { room: root, children, inaccessible_children: inaccessible };
  }

  /** Whether a user of `server` is joined to one of `roomIds` (a restricted room's allowed rooms). */
  private async inAnyRoom(server: string, roomIds: readonly string[]): Promise<boolean> {
    for (const id of roomIds) if ((await roomMembers(this.db, id, ['join'])).some((m) => serverNameOf(m.user_id) === server)) return true;
    return false;
  }

  /** A room's summary with its children, if the origin may see it. */
  private async summary(origin: string, roomId: string, suggestedOnly: boolean): Promise<Json | undefined> {
    const room = await getRoom(this.db, roomId);
    if (!room) return undefined;
    const rows = await currentState(this.db, roomId);
    const wanted = rows.filter((r) => SUMMARY_TYPES.includes(r.type) && r.state_key === '');
    const childRows = rows.filter((r) => r.type === 'm.space.child');
    const events = await getEvents(
      this.db,
      [...wanted, ...childRows].map((r) => r.event_id),
    );
    const content = (type: string): Json => {
      const r = wanted.find((x) => x.type === type);
      const c = r ? events.get(r.event_id)?.json['content'] : undefined;
      return isJsonObject(c) ? c : {};
    };
    const members = await roomMembers(this.db, roomId, ['join']);
    const joinRule = typeof content('m.room.join_rules')['join_rule'] === 'string' ? (content('m.room.join_rules')['join_rule'] as string) : 'invite';
    const worldReadable = content('m.room.history_visibility')['history_visibility'] === 'world_readable';
    const originIn = members.some((m) => serverNameOf(m.user_id) === origin);
    const allowedRooms = allowedRoomIds(content('m.room.join_rules'));
    const restricted = joinRule === 'restricted' || joinRule === 'knock_restricted';
    if (!OPEN_RULES.has(joinRule) && !worldReadable && !originIn && !(restricted && (await this.inAnyRoom(origin, allowedRooms)))) return undefined;
    const childrenState: Json[] = [];
    for (const r of childRows) {
      const e = events.get(r.event_id);
      const c = e?.json['content'];
      if (!e || !isJsonObject(c) || !Array.isArray(c['via']) || c['via'].length === 0) continue;
      if (suggestedOnly && c['suggested'] !== true) continue;
      childrenState.push({ type: 'm.space.child', state_key: r.state_key, sender: e.sender, content: c, origin_server_ts: e.origin_server_ts });
    }
    const create = content('m.room.create');
    const out: Json = {
      room_id: roomId,
      num_joined_members: members.length,
      join_rule: joinRule,
      world_readable: worldReadable,
      guest_can_join: content('m.room.guest_access')['guest_access'] === 'can_join',
      children_state: childrenState,
      room_version: room.room_version,
    };
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const add = (k: string, v: unknown) => {
      if (v !== undefined) out[k] = v;
    };
    add('name', str(content('m.room.name')['name']));
    add('topic', str(content('m.room.topic')['topic']));
    add('avatar_url', str(content('m.room.avatar')['url']));
    add('canonical_alias', str(content('m.room.canonical_alias')['alias']));
    add('room_type', str(create['type']));
    add('encryption', str(content('m.room.encryption')['algorithm']));
    if (restricted) out['allowed_room_ids'] = allowedRooms;
    return out;
  }
}
