/**
 * What the user admin API reads, in Synapse's shapes: the user list, one
 * user's details, their connections (whois) and joined rooms. The writes
 * are AccountsService's.
 */
import { type ClientConnection, joinedRoomIds, lastSeenOf, listUsers, USER_ORDER_BY, userConnections, type UserListEntry, type UserListFilter } from '../storage/admin-users.js';
import type { Database } from '../storage/database.js';
import { getProfile, getUser } from '../storage/users.js';

/** The `order_by` values the user list accepts. */
export { USER_ORDER_BY };

export class AdminUsersService {
  constructor(private readonly database: Database) {}

  list(filter: UserListFilter): Promise<{ users: UserListEntry[]; total: number }> {
    return listUsers(this.database.db, filter);
  }

  /** GET /_synapse/admin/v2/users/<user_id>: Synapse's fields, creation_ts in seconds as Synapse stores it; undefined for no such user. */
  async details(userId: string): Promise<Record<string, unknown> | undefined> {
    const db = this.database.db;
    const user = await getUser(db, userId);
    if (!user) return undefined;
    const [profile, lastSeen] = await Promise.all([getProfile(db, userId), lastSeenOf(db, userId)]);
    return {
      name: user.user_id,
      admin: user.admin,
      deactivated: user.deactivated,
      locked: user.locked,
      shadow_banned: user.shadow_banned,
      creation_ts: Math.floor(user.creation_ts / 1000),
      appservice_id: user.appservice_id,
      consent_server_notice_sent: null,
      consent_version: null,
      consent_ts: null,
      user_type: user.user_type,
      is_guest: user.is_guest,
      suspended: false,
      displayname: profile?.displayname ?? null,
      avatar_url: profile?.avatar_url ?? null,
      threepids: [],
      external_ids: [],
      erased: user.erased,
      last_seen_ts: lastSeen,
    };
  }

  /** The user's client connections by device (whois). */
  connections(userId: string): Promise<ClientConnection[]> {
    return userConnections(this.database.db, userId);
  }

  joinedRooms(userId: string): Promise<string[]> {
    return joinedRoomIds(this.database.db, userId);
  }
}
