/**
 * Rooms as a user acts on them: create (with Synapse's presets), send
 * messages and state, change memberships. Each action is one transaction
 * run in the room's queue; members are woken for sync after it commits.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import { roomIdFromCreateEvent } from '../../core/event-id.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { roomVersion, type RoomVersion } from '../../core/room-versions.js';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { getAlias, insertAlias } from '../../storage/aliases.js';
import { findTxn, getEvent, getEvents, recordTxn, type StoredEvent, type TxnKey } from '../../storage/events.js';
import { markForgotten, nextPendingDeactivation, removePendingDeactivation } from '../../storage/memberships.js';
import { getRoom, insertRoom } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { currentState, roomMembers, roomsForUser } from '../../storage/state.js';
import { getProfile } from '../../storage/users.js';
import type { Requester } from '../auth.js';
import type { Notifier } from '../notifier.js';
import { localAliasFromName } from './alias-syntax.js';
import { aliasCreationAllowed, publishingAllowed, type DirectorySettings } from './directory-rules.js';
import type { EventDraft, EventPipeline, PersistedEvent } from './event-pipeline.js';
import { isLive } from './event-persister.js';
import { membershipOfAction, planMembership, serverActingAs, type MembershipAction } from './membership.js';
import type { RoomRateLimits } from './rate-limits.js';
import { withSubsystemLogger } from '../../logger.js';

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

/**
 * Transaction id scopes: the spec scopes a txn id to the device and the
 * endpoint's path, so an id reused in another room, for another event type
 * or on another endpoint sends a new event. The scope is the path without
 * its version prefix and txn id (migration 0012 builds the same strings).
 */
export const txnScope = {
  send: (roomId: string, eventType: string): string => `/rooms/${roomId}/send/${eventType}`,
  redact: (roomId: string, eventId: string): string => `/rooms/${roomId}/redact/${eventId}`,
};

export interface RoomServiceDeps {
  db: Kysely<Schema>;
  serverName: string;
  defaultRoomVersion: string;
  pipeline: EventPipeline;
  notifier: Notifier;
  /** The room-directory settings (alias and publication rules); without them everything is allowed. */
  directory?: DirectorySettings;
  /** Synapse's `block_non_admin_invites`. */
  blockNonAdminInvites?: boolean;
  /** The rc_* limits on users' room actions; without them nothing is limited. */
  limits?: RoomRateLimits;
  logger?: Logger;
}

/** How a room action is made: `ratelimit: false` for changes the server makes itself (Synapse's ratelimit=False). */
export interface ActionOptions {
  now?: number;
  ratelimit?: boolean;
}

/** A room checked and ready to write (see RoomService.prepareRoom). */
export interface PreparedRoom {
  rv: RoomVersion;
  roomId: string;
  creator: string;
  invitees: string[];
  /** For random room ids, still open to changes until writeRoom builds the create event. */
  createContent: JsonObject;
  /** v12: the create event, built already because the room id is its hash. */
  create?: PDU;
  req: CreateRoomRequest;
  rules: PresetRules;
  alias?: string;
  publish: boolean;
  /** Invitees' display names and avatars, for their invite events (Synapse's include_profile_data_on_invite), and the creator's, for their join. */
  inviteeProfiles: Map<string, JsonObject>;
}

export class RoomService {
  constructor(private readonly d: RoomServiceDeps) {
    this.d = withSubsystemLogger(d, 'axon.rooms');
    const limits = d.limits;
    // Whoever must see a committed event is woken once it is stored.
    d.pipeline.onCommitted((events) => this.wakeFor(events));
    // rc_joins_per_room counts every join persisted in a room, whoever made it.
    if (limits) {
      d.pipeline.addPersistHook(async (_tx, room, ev) => {
        if (ev.pdu.type === 'm.room.member' && ev.pdu.content['membership'] === 'join') limits.joined(room.room_id);
      });
    }
  }

  /** The rate limits on room actions, for the upgrader (which counts as a room creation). */
  get limits(): RoomRateLimits | undefined {
    return this.d.limits;
  }

  get pipeline(): EventPipeline {
    return this.d.pipeline;
  }

  /** Creates a room as the spec's /createRoom describes; returns its id. */
  async createRoom(requester: Requester, req: CreateRoomRequest, now = Date.now()): Promise<{ roomId: string; events: PersistedEvent[] }> {
    this.d.limits?.roomCreation(requester.userId);
    const prepared = await this.prepareRoom(requester, req, now);
    this.d.limits?.createRoomInvites(requester.userId, prepared.invitees.length);
    const events = await this.d.pipeline.transaction((tx) => this.writeRoom(tx, prepared, now));
    return { roomId: prepared.roomId, events };
  }

  /**
   * Checks and computes what a new room needs before anything is written:
   * its version, its id, its alias (`room_alias_name`: refused here when
   * malformed, not allowed by `alias_creation_rules`, or taken), and whether
   * it may be published (`room_list_publication_rules`; a room that may not
   * is created unpublished, as Synapse does).
   */
  // Inside a transaction, pass it as `db`: the embedded database has one connection, so a read outside it would wait forever.
  async prepareRoom(requester: Requester, req: CreateRoomRequest, now = Date.now(), db: Kysely<Schema> | Transaction<Schema> = this.d.db): Promise<PreparedRoom> {
    const versionId = req.room_version ?? this.d.defaultRoomVersion;
    const rv = roomVersion(versionId);
    if (!rv) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Your homeserver does not support the features required to create rooms of version ${versionId}`);
    const preset = req.preset ?? (req.visibility === 'public' ? 'public_chat' : 'private_chat');
    const rules = PRESETS[preset];
    const creator = requester.userId;
    const invitees = [...new Set(req.invite ?? [])].filter((u) => u !== creator);
    const alias = req.room_alias_name === undefined ? undefined : localAliasFromName(req.room_alias_name, this.d.serverName);
    if (invitees.length > 0 && this.d.blockNonAdminInvites && !requester.isAdmin) throw forbidden('Invites have been disabled on this server');
    const inviteeProfiles = new Map<string, JsonObject>();
    for (const u of [creator, ...invitees]) {
      const profile = await getProfile(db, u);
      const p: JsonObject = {};
      if (profile?.displayname) p['displayname'] = profile.displayname;
      if (profile?.avatar_url) p['avatar_url'] = profile.avatar_url;
      inviteeProfiles.set(u, p);
    }

    const createContent: JsonObject = { ...(req.creation_content ?? {}), room_version: rv.id };
    if (!rv.implicitRoomCreator) createContent['creator'] = creator;
    else delete createContent['creator'];
    if (rv.privilegedCreators && rules.inviteesAreAdmins && invitees.length > 0) createContent['additional_creators'] = invitees;

    // v12: the room id is the create event's hash, known once it is built.
    const legacyId = rv.roomIdFromCreateEvent ? undefined : `!${randomId()}:${this.d.serverName}`;
    const create = legacyId === undefined ? this.d.pipeline.buildCreateEvent(rv, undefined, creator, createContent, now) : undefined;
    const roomId = legacyId ?? roomIdFromCreateEvent(create as PDU, rv.id);

    if (alias !== undefined) {
      if (this.d.directory && !requester.isAdmin && !aliasCreationAllowed(this.d.directory, creator, roomId, alias)) throw forbidden('Not allowed to create alias');
      if (await getAlias(db, alias)) throw new MatrixError(400, 'M_ROOM_IN_USE', 'Room alias already taken');
    }
    const publish = req.visibility === 'public' && (!this.d.directory || publishingAllowed(this.d.directory, requester, roomId, alias ? [alias] : []));
    return { rv, roomId, creator, invitees, createContent, create, req, rules, alias, publish, inviteeProfiles };
  }

  /**
   * Writes a prepared room in `tx`: the room row, its first events, and its
   * alias (a taken alias, even one taken a moment ago, undoes it all with
   * 400 M_ROOM_IN_USE).
   */
  async writeRoom(tx: Transaction<Schema>, p: PreparedRoom, now = Date.now()): Promise<PersistedEvent[]> {
    return this.d.pipeline.inRoomQueue(p.roomId, async () => {
      await insertRoom(tx, { roomId: p.roomId, version: p.rv.id, creator: p.creator, isPublic: p.publish, now });
      const room = await this.d.pipeline.room(tx, p.roomId);
      const create = p.create ?? this.d.pipeline.buildCreateEvent(p.rv, p.roomId, p.creator, p.createContent, now);
      const out: PersistedEvent[] = [];
      out.push(await this.d.pipeline.persist(tx, room, p.creator, { type: 'm.room.create', state_key: '', content: create.content }, now, create));
      if (p.alias !== undefined && !(await insertAlias(tx, { alias: p.alias, roomId: p.roomId, creator: p.creator, now }))) {
        throw new MatrixError(400, 'M_ROOM_IN_USE', 'Room alias already taken');
      }
      for (const draft of this.initialDrafts(p.rv, p.creator, p.invitees, p.rules, p.req, p.alias, p.inviteeProfiles))
        out.push(await this.d.pipeline.persist(tx, room, p.creator, draft, now));
      return out;
    });
  }

  private initialDrafts(
    rv: RoomVersion,
    creator: string,
    invitees: string[],
    rules: PresetRules,
    req: CreateRoomRequest,
    alias?: string,
    inviteeProfiles?: Map<string, JsonObject>,
  ): EventDraft[] {
    // The creator's join carries their profile, as every other join does.
    const drafts: EventDraft[] = [{ type: 'm.room.member', state_key: creator, content: { ...inviteeProfiles?.get(creator), membership: 'join' } }];
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
    const initial = new Map((req.initial_state ?? []).map((s) => [`${s.type}\u0000${s.state_key ?? ''}`, s]));
    // Power levels given in initial_state replace the defaults and the override, as in Synapse.
    const initialPowerLevels = initial.get('m.room.power_levels\u0000');
    initial.delete('m.room.power_levels\u0000');
    drafts.push({ type: 'm.room.power_levels', state_key: '', content: initialPowerLevels?.content ?? powerLevels });
    if (alias !== undefined && !initial.has('m.room.canonical_alias\u0000')) drafts.push({ type: 'm.room.canonical_alias', state_key: '', content: { alias } });
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
      const content: JsonObject = { ...(inviteeProfiles?.get(u) ?? {}), membership: 'invite' };
      if (req.is_direct) content['is_direct'] = true;
      drafts.push({ type: 'm.room.member', state_key: u, content });
    }
    return drafts;
  }

  /**
   * Sends one event into a room. With a transaction id (client sends), the
   * same (user, device, endpoint scope, txn id) returns the first event
   * instead of a second, without counting against rc_message.
   */
  async send(
    requester: Requester,
    roomId: string,
    draft: EventDraft,
    txn?: { scope: string; id: string },
    opts: ActionOptions = {},
  ): Promise<{ eventId: string; streamOrdering?: number }> {
    const now = opts.now ?? Date.now();
    const key: TxnKey | undefined = txn && { userId: requester.userId, deviceId: requester.deviceId ?? '', scope: txn.scope, txnId: txn.id };
    if (key) {
      const seen = await findTxn(this.d.db, key);
      if (seen) return { eventId: seen };
    }
    const limits = opts.ratelimit === false ? undefined : this.d.limits;
    const adminRedaction = limits !== undefined && (await this.redactsOthers(requester.userId, draft));
    return this.counted(limits, requester.userId, adminRedaction, () => this.sendNow(requester, roomId, draft, key, now));
  }

  /**
   * Runs an action that sends one event, counted against rc_message; the
   * count is given back when it fails or turns out to send nothing.
   */
  private async counted<T extends { pdu?: PDU }>(limits: RoomRateLimits | undefined, userId: string, adminRedaction: boolean, fn: () => Promise<T>): Promise<T> {
    limits?.message(userId, { adminRedaction });
    let out: T;
    try {
      out = await fn();
    } catch (err) {
      limits?.refundMessage(userId, adminRedaction);
      throw err;
    }
    if (!out.pdu) limits?.refundMessage(userId, adminRedaction);
    return out;
  }

  /** Whether a draft redacts another user's event (Synapse's admin redaction, limited by rc_admin_redaction). */
  private async redactsOthers(userId: string, draft: EventDraft): Promise<boolean> {
    if (draft.type !== 'm.room.redaction' || typeof draft.redacts !== 'string') return false;
    const target = await getEvent(this.d.db, draft.redacts);
    return target !== undefined && target.sender !== userId;
  }

  private async sendNow(
    requester: Requester,
    roomId: string,
    draft: EventDraft,
    key: TxnKey | undefined,
    now: number,
  ): Promise<{ eventId: string; streamOrdering?: number; pdu?: PDU }> {
    return this.d.pipeline.roomTransaction(roomId, async (tx) => {
      if (key) {
        const seen = await findTxn(tx, key);
        if (seen) return { eventId: seen } as const;
      }
      const room = await this.d.pipeline.room(tx, roomId);
      const p = await this.d.pipeline.persist(tx, room, requester.userId, draft, now);
      if (key) await recordTxn(tx, key, p.eventId, now);
      return p;
    });
  }

  /** After a commit: wakes the members of each room that got a live event, and the targets of membership changes. */
  private async wakeFor(events: readonly PersistedEvent[]): Promise<void> {
    const byRoom = new Map<string, Set<string>>();
    for (const e of events) {
      if (!isLive(e)) continue;
      let targets = byRoom.get(e.roomId);
      if (!targets) byRoom.set(e.roomId, (targets = new Set()));
      if (e.pdu.type === 'm.room.member' && typeof e.pdu.state_key === 'string') targets.add(e.pdu.state_key);
    }
    for (const [roomId, users] of byRoom) {
      for (const m of await roomMembers(this.d.db, roomId, ['join', 'invite', 'knock'])) users.add(m.user_id);
      this.d.notifier.notifyUsers(users);
    }
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
    const action: MembershipAction = membership === 'leave' && target !== requester.userId ? 'kick' : membership;
    return this.updateMembership(requester, roomId, target, action, extra);
  }

  /**
   * Changes a membership the way the client API asks for it, with Synapse's
   * checks before the auth rules (see membership.ts). A repeat of the
   * current membership event returns that event.
   */
  async updateMembership(
    requester: Requester,
    roomId: string,
    target: string,
    action: MembershipAction,
    extra: JsonObject = {},
    opts: ActionOptions = {},
  ): Promise<{ eventId: string }> {
    const now = opts.now ?? Date.now();
    const limits = opts.ratelimit === false ? undefined : this.d.limits;
    if (limits && action === 'join' && (await this.membership(roomId, requester.userId)) !== 'join') limits.join(requester.userId, roomId);
    if (limits && action === 'invite') limits.invite(requester.userId, roomId, target);
    const persisted = await this.counted(limits, requester.userId, false, () => this.changeMembership(requester, roomId, target, action, extra, now));
    return { eventId: persisted.eventId };
  }

  private async changeMembership(
    requester: Requester,
    roomId: string,
    target: string,
    action: MembershipAction,
    extra: JsonObject,
    now: number,
  ): Promise<{ eventId: string; pdu?: PDU }> {
    const opts = { blockNonAdminInvites: this.d.blockNonAdminInvites ?? false };
    if (this.d.pipeline.isRemoteInviteOf(target, membershipOfAction(action))) {
      // The invitee's server co-signs first, with no transaction open while it answers.
      return this.d.pipeline.inRoomQueue(roomId, async () => {
        await this.d.pipeline.room(this.d.db, roomId);
        const plan = await planMembership(this.d.db, roomId, requester, target, action, extra, opts);
        if ('existing' in plan) return { eventId: plan.existing } as const;
        return this.d.pipeline.persistRemoteInvite(this.d.db, roomId, requester.userId, plan.draft, now);
      });
    }
    return this.d.pipeline.roomTransaction(roomId, async (tx) => {
      const room = await this.d.pipeline.room(tx, roomId);
      const plan = await planMembership(tx, roomId, requester, target, action, extra, opts);
      if ('existing' in plan) return { eventId: plan.existing } as const;
      return this.d.pipeline.persist(tx, room, requester.userId, plan.draft, now);
    });
  }

  /**
   * Forgets a room the user has left or been banned from (400 M_UNKNOWN
   * while they are in it, invited or knocking). A user who never was in the
   * room forgets nothing, as in Synapse.
   */
  async forget(userId: string, roomId: string): Promise<void> {
    await this.d.db.transaction().execute(async (tx) => {
      const [row] = await currentState(tx, roomId, [['m.room.member', userId]]);
      if (!row) return;
      if (row.membership !== 'leave' && row.membership !== 'ban') throw new MatrixError(400, 'M_UNKNOWN', `User ${userId} in room ${roomId}`);
      await markForgotten(tx, userId, roomId, row.event_id);
    });
  }

  private parting: Promise<void> = Promise.resolve();

  /**
   * Parts every deactivated user still waiting (users_pending_deactivation,
   * written in the deactivation's transaction): pending invites and knocks
   * are rejected, joined rooms left and then forgotten, as Synapse does.
   * Calls queue behind each other; each resolves once the queue is empty.
   */
  partDeactivatedUsers(): Promise<void> {
    const run = this.parting.then(() => this.partPending());
    this.parting = run.catch((err: unknown) => this.d.logger?.error({ err }, 'parting deactivated users failed'));
    return run;
  }

  private async partPending(): Promise<void> {
    for (;;) {
      const userId = await nextPendingDeactivation(this.d.db);
      if (userId === undefined) return;
      const requester = serverActingAs(userId);
      for (const r of await roomsForUser(this.d.db, userId, ['join', 'invite', 'knock'])) {
        try {
          await this.updateMembership(requester, r.room_id, userId, 'leave', {}, { ratelimit: false });
          if (r.membership === 'join') await this.forget(userId, r.room_id);
        } catch (err) {
          this.d.logger?.warn({ err, user_id: userId, room_id: r.room_id }, 'could not part deactivated user from room');
        }
      }
      await removePendingDeactivation(this.d.db, userId);
      this.d.logger?.info({ user_id: userId }, 'deactivated user parted from their rooms');
    }
  }

  /**
   * After a profile change: a new join event with the new display name and
   * avatar in every room the user is joined to (skipped where nothing
   * changed), sent as the user, as Synapse does.
   */
  async updateProfileInRooms(userId: string): Promise<void> {
    const requester = serverActingAs(userId);
    for (const r of await roomsForUser(this.d.db, userId, ['join'])) {
      try {
        await this.updateMembership(requester, r.room_id, userId, 'join', {}, { ratelimit: false });
      } catch (err) {
        this.d.logger?.warn({ err, user_id: userId, room_id: r.room_id }, 'could not update member event after a profile change');
      }
    }
  }

  /** Whether this server holds the room. */
  async exists(roomId: string): Promise<boolean> {
    return (await getRoom(this.d.db, roomId)) !== undefined;
  }

  /** The rooms the user is joined to. */
  async joinedRooms(userId: string): Promise<string[]> {
    return (await roomsForUser(this.d.db, userId, ['join'])).map((r) => r.room_id);
  }

  /** The room's current state events. */
  async currentStateEvents(roomId: string): Promise<StoredEvent[]> {
    const rows = await currentState(this.d.db, roomId);
    const events = await getEvents(
      this.d.db,
      rows.map((r) => r.event_id),
    );
    return rows.map((r) => events.get(r.event_id)).filter((e): e is StoredEvent => e !== undefined);
  }

  /** The one current state event at (type, state key), or undefined: GET /rooms/{id}/state/{type}/{key}. */
  async currentStateEvent(roomId: string, type: string, stateKey: string): Promise<StoredEvent | undefined> {
    const [row] = await currentState(this.d.db, roomId, [[type, stateKey]]);
    return row ? getEvent(this.d.db, row.event_id) : undefined;
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
