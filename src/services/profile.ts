/**
 * Profiles of local users: reading them, and changing a display name or
 * avatar URL. Who may write (the user, or a server admin for anyone) and
 * `enable_set_displayname` / `enable_set_avatar_url: false` (a field with a
 * value is frozen for non-admins) are checked here. A change is one
 * transaction; once it commits, the user's member event in each joined room
 * is renewed with the new profile, as Synapse does.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { forbidden, MatrixError } from '../matrix-error.js';
import { withSubsystemLogger } from '../logger.js';
import { setProfileField, type ProfileField } from '../storage/profiles.js';
import type { Schema } from '../storage/schema.js';
import { getProfile } from '../storage/users.js';
import type { Requester } from './auth.js';
import type { RemoteQueries } from './federation/remote-queries.js';
import type { RoomService } from './rooms/room-service.js';

export type { ProfileField };

export interface Profile {
  readonly displayname: string | null;
  readonly avatar_url: string | null;
}

/** A Synapse boolean key kept only in `config.raw`. */
export function rawBool(raw: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = raw[key];
  return typeof v === 'boolean' ? v : fallback;
}

export interface ProfileDeps {
  readonly db: Kysely<Schema>;
  readonly raw: Record<string, unknown>;
  readonly isMine: (userId: string) => boolean;
  readonly rooms: RoomService;
  /** Profiles of other servers' users, over federation. */
  readonly remote?: RemoteQueries;
  readonly logger?: Logger;
}

export const profileNotFound = () => new MatrixError(404, 'M_NOT_FOUND', 'Profile was not found');

export class ProfileService {
  private readonly settable: Record<ProfileField, boolean>;

  constructor(private readonly d: ProfileDeps) {
    this.d = withSubsystemLogger(d, 'axon.profile');
    this.settable = {
      displayname: rawBool(d.raw, 'enable_set_displayname', true),
      avatar_url: rawBool(d.raw, 'enable_set_avatar_url', true),
    };
  }

  /** A user's profile: ours from the database, another server's asked of it; 404 for unknown users. */
  async get(userId: string): Promise<Profile> {
    if (!this.d.isMine(userId)) {
      if (!this.d.remote) throw profileNotFound();
      return this.d.remote.profile(userId, userId.slice(userId.indexOf(':') + 1), profileNotFound);
    }
    return this.local(userId);
  }

  /** A local user's profile (what /query/profile answers other servers); 400 for another server's user, 404 for unknown users. */
  async local(userId: string): Promise<Profile> {
    if (!this.d.isMine(userId)) throw new MatrixError(400, 'M_INVALID_PARAM', 'User is not hosted on this homeserver');
    const profile = await getProfile(this.d.db, userId);
    if (!profile) throw profileNotFound();
    return profile;
  }

  /**
   * Sets (or, with null, clears) `field` of `userId` for `requester`, then
   * renews the user's member events in their joined rooms.
   */
  async set(requester: Requester, userId: string, field: ProfileField, value: string | null): Promise<void> {
    await this.checkWrite(requester, userId, field);
    const updated = await this.d.db.transaction().execute((tx) => setProfileField(tx, userId, field, value));
    if (!updated) throw profileNotFound();
    this.d.logger?.info({ user_id: userId, field }, 'profile updated');
    await this.d.rooms.updateProfileInRooms(userId);
  }

  /** Checks that `requester` may write `field` of `userId` (their own, or anyone's as a server admin). */
  private async checkWrite(requester: Requester, userId: string, field: ProfileField): Promise<void> {
    if (!this.d.isMine(userId)) throw new MatrixError(400, 'M_INVALID_PARAM', 'User is not hosted on this homeserver');
    const byAdmin = requester.isAdmin && requester.userId !== userId;
    if (requester.userId !== userId && !byAdmin) throw forbidden(`Cannot set another user's ${field}`);
    const profile = await getProfile(this.d.db, userId);
    if (!profile) throw profileNotFound();
    if (!byAdmin && !this.settable[field] && profile[field]) {
      throw forbidden(field === 'displayname' ? 'Changing display name is disabled on this server' : 'Changing avatar is disabled on this server');
    }
  }
}
