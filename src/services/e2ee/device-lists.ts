/**
 * Device lists: who must fetch whose keys again. A user's device list
 * changes when a device of theirs gets or changes identity keys, is
 * renamed or deleted, or when their cross-signing keys (or signatures over
 * their keys) change; each change is a row on the device-lists stream
 * (storage/device-lists.ts), whose position sync tokens carry.
 *
 * Between two tokens, a user is told (in /sync's `device_lists` and in
 * /keys/changes):
 * - `changed`: themself and the users they share a room with whose device
 *   list changed in the window; and users they newly share a room with
 *   (the user joined a room, or someone joined one of the user's rooms:
 *   their membership went from something else to `join` over the window),
 *   since the client may hold an outdated list of them.
 * - `left`: users who were in a room with the user that one of them left
 *   over the window (or the user left), and who now share no room with the
 *   user any more: the client may stop tracking them.
 */
import type { Kysely } from 'kysely';
import {
  changedDeviceListsVisibleTo,
  joinedMembersByRoom,
  memberChangesInWindow,
  type MemberChange,
  membershipsAt,
  sharingARoomWith,
  usersToTell,
} from '../../storage/device-lists.js';
import { recordDeviceListChange } from '../../storage/device-lists.js';
import type { Tx } from '../../storage/db.js';
import type { Schema } from '../../storage/schema.js';
import type { Notifier } from '../notifier.js';
import type { StreamPositions } from '../streams/positions.js';

/** The two stream positions of a sync token that device lists depend on. */
export interface DeviceListPosition {
  events: number;
  deviceLists: number;
}

export interface DeviceListChanges {
  changed: string[];
  left: string[];
}

const pairKey = (roomId: string, userId: string) => `${roomId}\u0000${userId}`;

/** `changed` and `left` for `userId` between two tokens (see the top of this file). */
export async function deviceListChanges(
  db: Kysely<Schema>,
  userId: string,
  from: DeviceListPosition,
  to: DeviceListPosition,
  /** The window's membership events in the user's rooms, when the caller has already read them (memberChangesInWindow's rows). */
  windowMembers?: readonly MemberChange[],
): Promise<DeviceListChanges> {
  const changed = new Set(await changedDeviceListsVisibleTo(db, userId, from.deviceLists, to.deviceLists));
  const left = new Set<string>();
  const rows = to.events <= from.events ? [] : (windowMembers ?? (await memberChangesInWindow(db, userId, from.events, to.events)));
  if (rows.length > 0) {
    // Membership at the end of the window: the last event of each (room, user) in it.
    const after = new Map<string, { roomId: string; userId: string; membership: string }>();
    for (const r of rows) after.set(pairKey(r.room_id, r.user_id), { roomId: r.room_id, userId: r.user_id, membership: r.membership });
    const pairs = [...after.values()];
    const before = await membershipsAt(db, pairs, from.events);
    const joinedNow = new Set<string>();
    const leftNow = new Set<string>();
    const roomsJoined: string[] = [];
    const roomsLeft: string[] = [];
    for (const p of pairs) {
      const was = before.get(pairKey(p.roomId, p.userId)) === 'join';
      const is = p.membership === 'join';
      if (was === is) continue;
      if (p.userId === userId) (is ? roomsJoined : roomsLeft).push(p.roomId);
      else (is ? joinedNow : leftNow).add(p.userId);
    }
    const members = await joinedMembersByRoom(db, [...roomsJoined, ...roomsLeft]);
    for (const r of roomsJoined) for (const u of members.get(r) ?? []) joinedNow.add(u);
    for (const r of roomsLeft) for (const u of members.get(r) ?? []) leftNow.add(u);
    joinedNow.delete(userId);
    leftNow.delete(userId);
    if (joinedNow.size > 0 || leftNow.size > 0) {
      const sharing = await sharingARoomWith(db, userId, [...new Set([...joinedNow, ...leftNow])]);
      for (const u of joinedNow) if (sharing.has(u)) changed.add(u);
      for (const u of leftNow) if (!sharing.has(u)) left.add(u);
    }
  }
  return { changed: [...changed].sort(), left: [...left].sort() };
}

/**
 * The one place a change to users' device lists is announced, once it has
 * committed: it wakes the syncs the change concerns (the users themselves
 * and everyone sharing a room with them). This is also where the
 * federation sender will queue `m.device_list_update`. Failing to wake
 * only delays the news to the next sync, so errors are logged, not thrown.
 */
export class DeviceListsService {
  private readonly listeners: ((userIds: readonly string[]) => void)[] = [];
  constructor(private readonly d: { db: Kysely<Schema>; notifier: Notifier; positions: StreamPositions; logger?: { warn(obj: object, msg: string): void } }) {}

  /**
   * GET /keys/changes: `changed` and `left` for the user between two sync
   * tokens. `to` is a hint (Synapse ignores it); a token from the future is
   * brought back to the present.
   */
  async changesBetween(userId: string, from: DeviceListPosition, to?: DeviceListPosition): Promise<DeviceListChanges> {
    const now = await this.d.positions.current();
    const end = to ?? now;
    const upto = { events: Math.min(end.events, now.events), deviceLists: Math.min(end.deviceLists, now.deviceLists) };
    const after = { events: Math.min(from.events, upto.events), deviceLists: Math.min(from.deviceLists, upto.deviceLists) };
    return deviceListChanges(this.d.db, userId, after, upto);
  }

  /**
   * Another server says one of its users' devices or cross-signing keys
   * changed (`m.device_list_update`, `m.signing_key_update`): recorded in
   * the device-list stream, so our users who share a room with them see the
   * user in `device_lists.changed` and query the keys again. `within` runs
   * in the same transaction (the remote device-list cache's update), so the
   * change is seen only with it.
   */
  async remoteChanged(userId: string, deviceIds: readonly string[], now = Date.now(), within?: (tx: Tx) => Promise<void>): Promise<void> {
    await this.d.db.transaction().execute(async (tx) => {
      if (within) await within(tx);
      await recordDeviceListChange(tx, userId, deviceIds, now);
    });
    await this.changed([userId]);
  }

  /** Adds a listener told of the users whose devices changed (called after each commit with a change). */
  onChange(listener: (userIds: readonly string[]) => void): void {
    this.listeners.push(listener);
  }

  async changed(userIds: Iterable<string>): Promise<void> {
    const users = [...new Set(userIds)];
    for (const l of this.listeners) l(users);
    userIds = users;
    try {
      const all = new Set<string>();
      for (const u of new Set(userIds)) for (const x of await usersToTell(this.d.db, u)) all.add(x);
      this.d.notifier.notifyUsers(all);
    } catch (err) {
      this.d.logger?.warn({ err: (err as Error).message }, 'could not wake syncs for a device list change');
    }
  }
}
