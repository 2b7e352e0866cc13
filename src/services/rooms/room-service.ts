/**
 * Rooms as a user acts on them: create (with Synapse's presets), send
 * messages and state, change memberships. Each action is one transaction
 * run in the room's queue; members are woken for sync after it commits.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { roomIdFromCreateEvent } from '../../core/event-id.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { roomVersion, type RoomVersion } from '../../core/room-versions.js';
import { MatrixError } from '../../matrix-error.js';
import { findTxn, getEvent, recordTxn, type StoredEvent } from '../../storage/events.js';
import { insertRoom, setRoomPublic } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { currentState, roomMembers } from '../../storage/state.js';
import { getProfile } from '../../storage/users.js';
import type { Requester } from '../auth.js';
import type { Notifier } from '../notifier.js';
import type { EventDraft, EventPipeline, PersistedEvent } from './event-pipeline.js';

export type Preset = 'private_chat' | 'trusted_private_chat' | 'public_chat';

export interface CreateRoomRequest {
  visibility?: 'public' | 'private';
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  room_version?: string;
  creation_content?: JsonObject;
  initial_state?: { type: string; state_key?: string; content: JsonObject }[];
  preset?: Preset;
  is_direct?: boolean;
  power_level_content_override?: JsonObject;
}

interface PresetRules {
  joinRule: string;
  historyVisibility: string;
  guestCanJoin: boolean;
  inviteesAreAdmins: boolean;
  inviteLevel: number;
}

/** Synapse's presets (RoomCreationHandler): private chats let members invite. */
const PRESETS: Record<Preset, PresetRules> = {
  private_chat: { joinRule: 'invite', historyVisibility: 'shared', guestCanJoin: true, inviteesAreAdmins: false, inviteLevel: 0 },
  trusted_private_chat: { joinRule: 'invite', historyVisibility: 'shared', guestCanJoin: true, inviteesAreAdmins: true, inviteLevel: 0 },
  public_chat: { joinRule: 'public', historyVisibility: 'shared', guestCanJoin: false, inviteesAreAdmins: false, inviteLevel: 50 },
};

const ROOM_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export interface RoomServiceDeps {
  db: Kysely<Schema>;
  serverName: string;
  defaultRoomVersion: string;
  pipeline: EventPipeline;
  notifier: Notifier;
}

export class RoomService {
  constructor(private readonly d: RoomServiceDeps) {}

  get pipeline(): EventPipeline {
    return this.d.pipeline;
  }

  /** Creates a room as the spec's /createRoom describes; returns its id. */
  async createRoom(requester: Requester, req: CreateRoomRequest, now = Date.now()): Promise<{ roomId: string; events: PersistedEvent[] }> {
    const versionId = req.room_version ?? this.d.defaultRoomVersion;
    const rv = roomVersion(versionId);
    if (!rv) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Your homeserver does not support the features required to create rooms of version ${versionId}`);
    const preset = req.preset ?? (req.visibility === 'public' ? 'public_chat' : 'private_chat');
    const rules = PRESETS[preset];
    const creator = requester.userId;
    const invitees = [...new Set(req.invite ?? [])].filter((u) => u !== creator);

    const createContent: JsonObject = { ...(req.creation_content ?? {}), room_version: rv.id };
    if (!rv.implicitRoomCreator) createContent['creator'] = creator;
    else delete createContent['creator'];
    if (rv.privilegedCreators && rules.inviteesAreAdmins && invitees.length > 0) createContent['additional_creators'] = invitees;

    // v12: the room id is the create event's hash, known once it is built.
    const legacyId = rv.roomIdFromCreateEvent ? undefined : `!${randomId()}:${this.d.serverName}`;
    const create = this.d.pipeline.buildCreateEvent(rv, legacyId, creator, createContent, now);
    const roomId = legacyId ?? roomIdFromCreateEvent(create, rv.id);
    const drafts = this.initialDrafts(rv, creator, invitees, rules, req);

    const events = await this.d.db.transaction().execute(async (tx) => {
      return this.d.pipeline.inRoomQueue(roomId, async () => {
        await insertRoom(tx, { roomId, version: rv.id, creator, isPublic: req.visibility === 'public', now });
        const room = await this.d.pipeline.room(tx, roomId);
        const out: PersistedEvent[] = [];
        out.push(await this.d.pipeline.persist(tx, room, creator, { type: 'm.room.create', state_key: '', content: createContent }, now, create));
        for (const draft of drafts) out.push(await this.d.pipeline.persist(tx, room, creator, draft, now));
        if (req.visibility === 'public') await setRoomPublic(tx, roomId, true);
        return out;
      });
    });
    this.d.notifier.notifyUsers([creator, ...invitees]);
    return { roomId, events };
  }

  private initialDrafts(rv: RoomVersion, creator: string, invitees: string[], rules: PresetRules, req: CreateRoomRequest): EventDraft[] {
    const drafts: EventDraft[] = [{ type: 'm.room.member', state_key: creator, content: { membership: 'join' } }];
    const users: JsonObject = {};
    if (!rv.privilegedCreators) users[creator] = 100;
    if (rules.inviteesAreAdmins && !rv.privilegedCreators) for (const u of invitees) users[u] = 100;
    const powerLevels: JsonObject = {
      users,
      users_default: 0,
      events: {
        'm.room.name': 50,
        'm.room.power_levels': 100,
        'm.room.history_visibility': 100,
        'm.room.canonical_alias': 50,
        'm.room.avatar': 50,
        'm.room.tombstone': 100,
        'm.room.server_acl': 100,
        'm.room.encryption': 100,
      },
      events_default: 0,
      state_default: 50,
      ban: 50,
      kick: 50,
      redact: 50,
      invite: rules.inviteLevel,
      historical: 100,
      notifications: { room: 50 },
      ...(req.power_level_content_override ?? {}),
    };
    drafts.push({ type: 'm.room.power_levels', state_key: '', content: powerLevels });
    const initial = new Map((req.initial_state ?? []).map((s) => [`${s.type}\u0000${s.state_key ?? ''}`, s]));
    const presetState: EventDraft[] = [
      { type: 'm.room.join_rules', state_key: '', content: { join_rule: rules.joinRule } },
      { type: 'm.room.history_visibility', state_key: '', content: { history_visibility: rules.historyVisibility } },
    ];
    if (rules.guestCanJoin) presetState.push({ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'can_join' } });
    for (const s of presetState) if (!initial.has(`${s.type}\u0000${s.state_key}`)) drafts.push(s);
    for (const s of initial.values()) drafts.push({ type: s.type, state_key: s.state_key ?? '', content: s.content });
    if (req.name !== undefined) drafts.push({ type: 'm.room.name', state_key: '', content: { name: req.name } });
    if (req.topic !== undefined) drafts.push({ type: 'm.room.topic', state_key: '', content: { topic: req.topic } });
    for (const u of invitees) {
      const content: JsonObject = { membership: 'invite' };
      if (req.is_direct) content['is_direct'] = true;
      drafts.push({ type: 'm.room.member', state_key: u, content });
    }
    return drafts;
  }

  /**
   * Sends one event into a room. With a transaction id (client sends), the
   * same (user, device, txn id) returns the first event instead of a second.
   */
  async send(requester: Requester, roomId: string, draft: EventDraft, txnId?: string, now = Date.now()): Promise<{ eventId: string; streamOrdering?: number }> {
    const deviceKey = requester.deviceId ?? '';
    if (txnId !== undefined) {
      const seen = await findTxn(this.d.db, requester.userId, deviceKey, txnId);
      if (seen) return { eventId: seen };
    }
    const persisted = await this.d.pipeline.inRoomQueue(roomId, () =>
      this.d.db.transaction().execute(async (tx) => {
        if (txnId !== undefined) {
          const seen = await findTxn(tx, requester.userId, deviceKey, txnId);
          if (seen) return { eventId: seen } as const;
        }
        const room = await this.d.pipeline.room(tx, roomId);
        const p = await this.d.pipeline.persist(tx, room, requester.userId, draft, now);
        if (txnId !== undefined) await recordTxn(tx, requester.userId, deviceKey, txnId, p.eventId, now);
        return p;
      }),
    );
    if ('pdu' in persisted) await this.wake(roomId, persisted.pdu);
    return persisted;
  }

  /** Wakes the room's members (and the target of a membership change). */
  async wake(roomId: string, pdu?: PDU): Promise<void> {
    const members = await roomMembers(this.d.db, roomId, ['join', 'invite', 'knock']);
    const users = new Set(members.map((m) => m.user_id));
    if (pdu?.type === 'm.room.member' && typeof pdu.state_key === 'string') users.add(pdu.state_key);
    this.d.notifier.notifyUsers(users);
  }

  /**
   * Changes a membership: join, leave, invite, ban, unban (leave by
   * another), kick (leave by another), knock. The auth rules decide.
   */
  async setMembership(
    requester: Requester,
    roomId: string,
    target: string,
    membership: 'join' | 'leave' | 'invite' | 'ban' | 'knock',
    extra: JsonObject = {},
  ): Promise<{ eventId: string }> {
    const content: JsonObject = { ...extra, membership };
    if (membership === 'join' || membership === 'knock') {
      // Keep the profile in the member event, as clients show it from there.
      const profile = await getProfile(this.d.db, target);
      if (profile?.displayname && content['displayname'] === undefined) content['displayname'] = profile.displayname;
      if (profile?.avatar_url && content['avatar_url'] === undefined) content['avatar_url'] = profile.avatar_url;
    }
    return this.send(requester, roomId, { type: 'm.room.member', state_key: target, content });
  }

  /** The room's current state events. */
  async currentStateEvents(roomId: string): Promise<StoredEvent[]> {
    const rows = await currentState(this.d.db, roomId);
    const events = await Promise.all(rows.map((r) => getEvent(this.d.db, r.event_id)));
    return events.filter((e): e is StoredEvent => e !== undefined);
  }

  /** The user's membership in a room now, or undefined. */
  async membership(roomId: string, userId: string): Promise<string | undefined> {
    const [row] = await currentState(this.d.db, roomId, [['m.room.member', userId]]);
    return row?.membership ?? undefined;
  }
}

function randomId(): string {
  const bytes = randomBytes(18);
  let s = '';
  for (const b of bytes) s += ROOM_ID_ALPHABET[b % ROOM_ID_ALPHABET.length];
  return s;
}
