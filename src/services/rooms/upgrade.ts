/**
 * Room upgrades (POST /rooms/{roomId}/upgrade), as Synapse performs them,
 * in one transaction: either all of it happens or none.
 *
 * 1. The tombstone (`m.room.tombstone` with `replacement_room`) is sent in
 *    the old room first, so the auth rules decide who may upgrade (403
 *    naming the rule) before anything else is written.
 * 2. The new room: its create event names the old room as `predecessor`
 *    (with the tombstone's id, except in v12+ where the new room's id is
 *    its create event's hash and so has to exist first); name, topic,
 *    avatar, join rules, history visibility, guest access, encryption,
 *    server ACL, the space's children for spaces, and the power levels are
 *    copied. The upgrader's level is raised for the copy if it is below
 *    what the copied state needs, and put back afterwards. Bans are copied.
 * 3. Local aliases move to the new room; the canonical alias moves too (the
 *    old room's `m.room.canonical_alias` loses the local aliases). A room
 *    published in the directory is unpublished and its successor published.
 *    Local members' room tags and `m.direct` entries follow the room.
 * 4. The old room's power levels are restricted: sending events and
 *    inviting need `max(users_default + 1, 50)`.
 * Failures of the optional steps (3 and 4) that the auth rules refuse are
 * logged and skipped, as Synapse does.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { JsonObject, JsonValue, PDU } from '../../core/pdu.js';
import { roomVersion, type RoomVersion } from '../../core/room-versions.js';
import { MatrixError } from '../../matrix-error.js';
import { getAccountData, GLOBAL, putAccountData } from '../../storage/account-data.js';
import { moveAliases } from '../../storage/aliases.js';
import { getEvents } from '../../storage/events.js';
import { getRoom, setRoomPublic } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { currentState, roomMembers, type StateKeyTuple } from '../../storage/state.js';
import type { Requester } from '../auth.js';
import type { Notifier } from '../notifier.js';
import type { EventDraft, PersistedEvent } from './event-pipeline.js';
import type { CreateRoomRequest, RoomService } from './room-service.js';
import { withSubsystemLogger } from '../../logger.js';
import type { Tx } from '../../storage/db.js';
import { isJsonObject, objectOrEmpty } from '../../core/json-values.js';

const COPIED_STATE: readonly StateKeyTuple[] = [
  ['m.room.join_rules', ''],
  ['m.room.name', ''],
  ['m.room.topic', ''],
  ['m.room.history_visibility', ''],
  ['m.room.guest_access', ''],
  ['m.room.avatar', ''],
  ['m.room.encryption', ''],
  ['m.room.server_acl', ''],
  ['m.room.power_levels', ''],
];

export interface RoomUpgraderDeps {
  db: Kysely<Schema>;
  rooms: RoomService;
  serverName: string;
  notifier: Notifier;
  logger?: Logger;
}

/** A power level value as an integer (strings of digits from older rooms included), or undefined. */
function asLevel(v: JsonValue | undefined): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number.parseInt(v, 10);
  return undefined;
}

/** Power levels content with every level an integer (rooms v10+ refuse strings), as Synapse copies it. */
export function fixupPowerLevels(content: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(content)) {
    if (isJsonObject(v)) {
      const m: JsonObject = {};
      for (const [mk, mv] of Object.entries(v)) {
        const l = asLevel(mv);
        if (l !== undefined) m[mk] = l;
      }
      out[k] = m;
    } else {
      const l = asLevel(v);
      if (l !== undefined) out[k] = l;
    }
  }
  return out;
}

function levelsMap(pl: JsonObject, key: string): JsonObject {
  const m = pl[key];
  return objectOrEmpty<JsonObject>(m);
}

function withoutUsers(pl: JsonObject, users: readonly string[]): JsonObject {
  const map = { ...levelsMap(pl, 'users') };
  for (const u of users) delete map[u];
  return { ...pl, users: map };
}

export class RoomUpgrader {
  private readonly inProgress = new Map<string, { userId: string; result: Promise<string> }>();

  constructor(private readonly d: RoomUpgraderDeps) {
    this.d = withSubsystemLogger(d, 'axon.rooms');
  }

  async upgrade(requester: Requester, oldRoomId: string, newVersion: string, additionalCreators?: string[]): Promise<string> {
    const rv = roomVersion(newVersion);
    if (!rv) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', 'Your homeserver does not support this room version');
    // An upgrade counts as a room creation (rc_room_creation and one rc_message), not event by event, as in Synapse.
    this.d.rooms.limits?.roomCreation(requester.userId);
    const running = this.inProgress.get(oldRoomId);
    if (running) {
      if (running.userId !== requester.userId) throw new MatrixError(400, 'M_UNKNOWN', 'An upgrade for this room is currently in progress');
      return running.result;
    }
    if (!(await getRoom(this.d.db, oldRoomId))) throw new MatrixError(404, 'M_NOT_FOUND', `Unknown room id ${oldRoomId}`);
    const result = this.run(requester, oldRoomId, rv, rv.privilegedCreators ? (additionalCreators ?? []) : []);
    this.inProgress.set(oldRoomId, { userId: requester.userId, result });
    try {
      return await result;
    } finally {
      this.inProgress.delete(oldRoomId);
    }
  }

  private async run(requester: Requester, oldRoomId: string, rv: RoomVersion, additionalCreators: string[]): Promise<string> {
    const { rooms } = this.d;
    const pipeline = rooms.pipeline;
    const now = Date.now();
    const touchedUsers = new Set<string>();
    const { newRoomId } = await pipeline.roomTransaction(oldRoomId, async (tx) => {
      const oldRoom = await pipeline.room(tx, oldRoomId);
      const state = await this.stateContents(tx, oldRoomId, [...COPIED_STATE, ['m.room.create', ''], ['m.room.canonical_alias', '']]);
      const oldCreate = state.get('m.room.create\u0000') ?? {};
      const oldPl = state.get('m.room.power_levels\u0000');

      // The new room's create content and copied state.
      const creationContent: JsonObject = { predecessor: { room_id: oldRoomId } };
      if (oldCreate['m.federate'] === false) creationContent['m.federate'] = false;
      if (oldCreate['type'] !== undefined) creationContent['type'] = oldCreate['type'];
      if (rv.privilegedCreators && additionalCreators.length > 0) creationContent['additional_creators'] = additionalCreators;
      const initialState: NonNullable<CreateRoomRequest['initial_state']> = [];
      for (const [type, stateKey] of COPIED_STATE) {
        const content = state.get(`${type}\u0000${stateKey}`);
        if (content && type !== 'm.room.power_levels') initialState.push({ type, state_key: stateKey, content });
      }
      if (oldCreate['type'] === 'm.space') {
        for (const [key, content] of await this.spaceChildren(tx, oldRoomId))
          if (Object.keys(content).length > 0) initialState.push({ type: 'm.space.child', state_key: key, content });
      }
      const creators = rv.privilegedCreators ? [requester.userId, ...additionalCreators] : [];
      const finalPl = oldPl ? withoutUsers(fixupPowerLevels(oldPl), creators) : undefined;
      if (finalPl) initialState.push({ type: 'm.room.power_levels', state_key: '', content: this.raisedForCopy(finalPl, requester.userId, rv) });

      const prepared = await rooms.prepareRoom(requester, { room_version: rv.id, preset: 'private_chat', creation_content: creationContent, initial_state: initialState }, now, tx);
      const newRoomId = prepared.roomId;

      // 1. The tombstone decides whether the requester may upgrade at all.
      const oldEvents: PersistedEvent[] = [];
      oldEvents.push(
        await pipeline.persist(
          tx,
          oldRoom,
          requester.userId,
          { type: 'm.room.tombstone', state_key: '', content: { body: 'This room has been replaced', replacement_room: newRoomId } },
          now,
        ),
      );
      const tombstoneId = oldEvents[0]!.eventId;
      if (!prepared.create) prepared.createContent['predecessor'] = { room_id: oldRoomId, event_id: tombstoneId };

      // 2. The new room, then its bans.
      const newEvents = await rooms.writeRoom(tx, prepared, now);
      const newRoom = await pipeline.room(tx, newRoomId);
      const tryPersist = async (room: typeof oldRoom, draft: EventDraft, into: PersistedEvent[]) => {
        try {
          into.push(await pipeline.persist(tx, room, requester.userId, draft, now));
        } catch (err) {
          if (!(err instanceof MatrixError) || err.statusCode !== 403) throw err;
          this.d.logger?.warn({ room_id: room.room_id, type: draft.type, state_key: draft.state_key }, `room upgrade: skipped an event the auth rules refused: ${err.message}`);
        }
      };
      await pipeline.inRoomQueue(newRoomId, async () => {
        const bans = await roomMembers(tx, oldRoomId, ['ban']);
        const banEvents = await getEvents(
          tx,
          bans.map((b) => b.event_id),
        );
        for (const b of bans) {
          const content = (banEvents.get(b.event_id)?.json['content'] as JsonObject | undefined) ?? { membership: 'ban' };
          await tryPersist(newRoom, { type: 'm.room.member', state_key: b.user_id, content }, newEvents);
        }
      });

      // 3. Aliases, the canonical alias, the directory, tags and m.direct.
      const canonical = state.get('m.room.canonical_alias\u0000');
      if (canonical) {
        const isLocal = (a: unknown): a is string => typeof a === 'string' && a.endsWith(`:${this.d.serverName}`);
        const oldContent: JsonObject = { ...canonical };
        const newContent: JsonObject = {};
        if (isLocal(canonical['alias'])) {
          newContent['alias'] = canonical['alias'];
          delete oldContent['alias'];
        }
        const alt = Array.isArray(canonical['alt_aliases']) ? canonical['alt_aliases'] : [];
        if (alt.length > 0) {
          newContent['alt_aliases'] = alt.filter(isLocal);
          const kept = alt.filter((a) => !isLocal(a));
          if (kept.length > 0) oldContent['alt_aliases'] = kept;
          else delete oldContent['alt_aliases'];
        }
        await tryPersist(oldRoom, { type: 'm.room.canonical_alias', state_key: '', content: oldContent }, oldEvents);
        await pipeline.inRoomQueue(newRoomId, () => tryPersist(newRoom, { type: 'm.room.canonical_alias', state_key: '', content: newContent }, newEvents));
      }
      await moveAliases(tx, oldRoomId, newRoomId);
      if (oldRoom.is_public) {
        await setRoomPublic(tx, oldRoomId, false);
        await setRoomPublic(tx, newRoomId, true);
      }
      for (const u of await this.copyUserState(tx, oldRoomId, newRoomId)) touchedUsers.add(u);

      // 4. Power levels: the old room silenced, the new one as the old was.
      if (oldPl) {
        const restricted = fixupPowerLevels(oldPl);
        const level = Math.max((asLevel(restricted['users_default']) ?? 0) + 1, 50);
        let changed = false;
        for (const k of ['invite', 'events_default']) {
          if ((asLevel(restricted[k]) ?? 0) < level) {
            restricted[k] = level;
            changed = true;
          }
        }
        if (changed) await tryPersist(oldRoom, { type: 'm.room.power_levels', state_key: '', content: restricted }, oldEvents);
      }
      if (finalPl) await pipeline.inRoomQueue(newRoomId, () => tryPersist(newRoom, { type: 'm.room.power_levels', state_key: '', content: finalPl }, newEvents));
      return { newRoomId, oldEvents, newEvents };
    });
    this.d.notifier.notifyUsers(touchedUsers);
    this.d.logger?.info({ old_room_id: oldRoomId, new_room_id: newRoomId, room_version: rv.id }, 'room upgraded');
    return newRoomId;
  }

  /** The content of these state events in the room now, keyed `type NUL state_key`. */
  private async stateContents(tx: Tx, roomId: string, keys: readonly StateKeyTuple[]): Promise<Map<string, JsonObject>> {
    const rows = await currentState(tx, roomId, keys);
    const events = await getEvents(
      tx,
      rows.map((r) => r.event_id),
    );
    const out = new Map<string, JsonObject>();
    for (const r of rows) {
      const content = events.get(r.event_id)?.json['content'];
      if (content && typeof content === 'object') out.set(`${r.type}\u0000${r.state_key}`, content as JsonObject);
    }
    return out;
  }

  private async spaceChildren(tx: Tx, roomId: string): Promise<Map<string, JsonObject>> {
    const rows = (await currentState(tx, roomId)).filter((r) => r.type === 'm.space.child');
    const events = await getEvents(
      tx,
      rows.map((r) => r.event_id),
    );
    const out = new Map<string, JsonObject>();
    for (const r of rows) out.set(r.state_key, (events.get(r.event_id)?.json['content'] as JsonObject | undefined) ?? {});
    return out;
  }

  /**
   * The power levels the new room starts with: the old ones, with the
   * upgrader raised to the highest level the copied state needs (state
   * default, ban, any event level) if below it. v12 creators need nothing.
   */
  private raisedForCopy(pl: JsonObject, userId: string, rv: RoomVersion): JsonObject {
    if (rv.privilegedCreators) return pl;
    const events = Object.values(levelsMap(pl, 'events')).map((v) => asLevel(v) ?? 0);
    const needed = Math.max(asLevel(pl['state_default']) ?? 50, asLevel(pl['ban']) ?? 50, ...events, 0);
    const users = levelsMap(pl, 'users');
    const current = asLevel(users[userId]) ?? asLevel(pl['users_default']) ?? 0;
    return current >= needed ? pl : { ...pl, users: { ...users, [userId]: needed } };
  }

  /** Local members' `m.tag` for the room and their `m.direct` entries follow it; returns whose account data changed. */
  private async copyUserState(tx: Tx, oldRoomId: string, newRoomId: string): Promise<string[]> {
    const changed: string[] = [];
    const members = await roomMembers(tx, oldRoomId, ['join']);
    for (const { user_id: userId } of members) {
      if (!userId.endsWith(`:${this.d.serverName}`)) continue;
      let touched = false;
      const tags = await getAccountData(tx, userId, oldRoomId, 'm.tag');
      if (tags) {
        await putAccountData(tx, userId, newRoomId, 'm.tag', tags);
        touched = true;
      }
      const direct = await getAccountData(tx, userId, GLOBAL, 'm.direct');
      if (direct) {
        let updated = false;
        const next: Record<string, unknown> = {};
        for (const [other, list] of Object.entries(direct)) {
          if (Array.isArray(list) && list.includes(oldRoomId) && !list.includes(newRoomId)) {
            next[other] = [...list, newRoomId];
            updated = true;
          } else next[other] = list;
        }
        if (updated) {
          await putAccountData(tx, userId, GLOBAL, 'm.direct', next);
          touched = true;
        }
      }
      if (touched) changed.push(userId);
    }
    return changed;
  }
}
