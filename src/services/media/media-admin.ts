/**
 * What the media admin API does beyond single-row updates: deleting local
 * media (through the media repository, which also forgets what it cached
 * about the item) and purging the remote media cache: rows first (one
 * transaction), then the files in Synapse's layout (content, thumbnails,
 * and directories left empty). A file that cannot be removed is logged and
 * left behind: nothing refers to it any more, so it is only wasted space.
 */
import { rm, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import {
  deleteOldRemoteMedia,
  getLocalMediaInfo,
  getRemoteMediaInfo,
  type LocalMediaInfo,
  listUserMedia,
  mxcUrisInRoom,
  oldLocalMediaIds,
  quarantineMediaList,
  quarantineUserMedia,
  type RemoteMediaInfo,
  setLocalQuarantine,
  setMediaProtected,
  setRemoteQuarantine,
  USER_MEDIA_ORDER_BY,
  type UserMediaEntry,
  type UserMediaOrderBy,
  type UserMediaPage,
} from '../../storage/media-admin.js';
import { getRoom } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { getUser } from '../../storage/users.js';
import { isValidMediaId, isValidServerName, MediaLayout } from './layout.js';
import type { MediaRepository } from './repository.js';
import { withSubsystemLogger } from '../../logger.js';

export { USER_MEDIA_ORDER_BY };
export type { LocalMediaInfo, RemoteMediaInfo, UserMediaOrderBy, UserMediaPage };

/** Old local media to delete: last used before `beforeTs`, larger than `sizeGt` bytes. */
export interface OldMediaQuery {
  readonly beforeTs: number;
  readonly sizeGt: number;
  readonly keepProfiles: boolean;
}

/** mxc://server/id split into its parts; undefined for anything else. */
function parseMxc(uri: string): { server: string; mediaId: string } | undefined {
  const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(uri);
  if (!m || !isValidServerName(m[1]!) || !isValidMediaId(m[2]!)) return undefined;
  return { server: m[1]!, mediaId: m[2]! };
}

export interface MediaAdminDeps {
  db: Kysely<Schema>;
  serverName: string;
  mediaStorePath: string;
  logger: Logger;
  repository: MediaRepository;
}

export class MediaAdminService {
  readonly layout: MediaLayout;

  constructor(private readonly d: MediaAdminDeps) {
    this.d = withSubsystemLogger(d, 'axon.media');
    this.layout = new MediaLayout(d.mediaStorePath);
  }

  private isMine(server: string): boolean {
    return server === this.d.serverName;
  }

  /**
   * A page of a local user's media; undefined when there is no such user.
   * `page` is read only once the user is known, so an unknown user is
   * reported before a bad query.
   */
  async userMedia(userId: string, page: () => UserMediaPage): Promise<{ media: UserMediaEntry[]; total: number; page: UserMediaPage } | undefined> {
    if (!(await getUser(this.d.db, userId))) return undefined;
    const p = page();
    return { ...(await listUserMedia(this.d.db, userId, p)), page: p };
  }

  /** Deletes a page of a local user's media (as userMedia reads it); undefined when there is no such user. */
  async deleteUserMedia(userId: string, page: () => UserMediaPage): Promise<string[] | undefined> {
    const listed = await this.userMedia(userId, page);
    return listed && this.deleteLocal(listed.media.map((m) => m.media_id));
  }

  /** Quarantines a user's local media (all but protected items) for `by`; answers how many rows were marked. */
  async quarantineUser(userId: string, by: string): Promise<number> {
    const n = await this.d.db.transaction().execute((tx) => quarantineUserMedia(tx, userId, by));
    this.d.logger.info({ count: n }, 'quarantined user media');
    return n;
  }

  /** The mxc URIs a room's events use, this server's and others'; undefined when the room is unknown. */
  async roomMedia(roomId: string): Promise<{ local: string[]; remote: string[] } | undefined> {
    if (!(await getRoom(this.d.db, roomId))) return undefined;
    const { local, remote } = await this.roomMediaIds(roomId);
    return { local, remote };
  }

  /** Quarantines the media a room's events use for `by`; answers how many rows were marked. */
  async quarantineRoom(roomId: string, by: string): Promise<number> {
    const { localIds, remoteIds } = await this.roomMediaIds(roomId);
    const n = await this.d.db.transaction().execute((tx) => quarantineMediaList(tx, localIds, remoteIds, by));
    this.d.logger.info({ count: n }, 'quarantined room media');
    return n;
  }

  private async roomMediaIds(roomId: string) {
    const out = { local: [] as string[], remote: [] as string[], localIds: [] as string[], remoteIds: [] as { origin: string; mediaId: string }[] };
    for (const uri of await mxcUrisInRoom(this.d.db, roomId)) {
      const p = parseMxc(uri);
      if (!p) continue;
      if (this.isMine(p.server)) {
        out.local.push(uri);
        out.localIds.push(p.mediaId);
      } else {
        out.remote.push(uri);
        out.remoteIds.push({ origin: p.server, mediaId: p.mediaId });
      }
    }
    return out;
  }

  /** One item, this server's or cached from another; undefined when unknown. */
  async info(origin: string, mediaId: string): Promise<{ local: LocalMediaInfo } | { remote: RemoteMediaInfo } | undefined> {
    if (this.isMine(origin)) {
      const local = await getLocalMediaInfo(this.d.db, mediaId);
      return local && { local };
    }
    const remote = await getRemoteMediaInfo(this.d.db, origin, mediaId);
    return remote && { remote };
  }

  /** Deletes one local item; undefined when there is no such item. */
  async deleteOne(mediaId: string): Promise<string[] | undefined> {
    if (!isValidMediaId(mediaId) || !(await getLocalMediaInfo(this.d.db, mediaId))) return undefined;
    return this.deleteLocal([mediaId]);
  }

  /** Marks one item quarantined by `by`, or (null) no longer quarantined. */
  async setQuarantine(origin: string, mediaId: string, by: string | null): Promise<void> {
    await this.d.db.transaction().execute((tx) => (this.isMine(origin) ? setLocalQuarantine(tx, mediaId, by) : setRemoteQuarantine(tx, origin, mediaId, by)));
    this.d.logger.info({ origin, mediaId, quarantine: by !== null }, 'media quarantine changed');
  }

  /** Marks a local item protected from quarantine, or not. */
  async setProtected(mediaId: string, safe: boolean): Promise<void> {
    await this.d.db.transaction().execute((tx) => setMediaProtected(tx, mediaId, safe));
  }

  /** Deletes old local media (see OldMediaQuery); answers the ids deleted. */
  async deleteOld(q: OldMediaQuery): Promise<string[]> {
    return this.deleteLocal(await oldLocalMediaIds(this.d.db, { ...q, serverName: this.d.serverName }));
  }

  /** Deletes local media (each: its rows, then its files); answers the ids that existed, in the order given. */
  async deleteLocal(mediaIds: readonly string[]): Promise<string[]> {
    const deleted: string[] = [];
    for (const id of mediaIds) {
      if (!isValidMediaId(id) || !(await this.d.repository.deleteLocal(id))) continue;
      deleted.push(id);
      await this.removeEmptyParents(this.layout.localContent(id));
      await this.removeEmptyParents(this.layout.localThumbnailDir(id));
    }
    if (deleted.length > 0) this.d.logger.info({ count: deleted.length }, 'deleted local media');
    return deleted;
  }

  /** Removes cached remote media last used before `beforeTs`; answers how many items went. */
  async purgeRemoteCache(beforeTs: number): Promise<number> {
    const gone = await this.d.db.transaction().execute((tx) => deleteOldRemoteMedia(tx, beforeTs));
    for (const m of gone) {
      if (!isValidServerName(m.media_origin) || !isValidMediaId(m.filesystem_id)) continue;
      await this.removeFile(this.layout.remoteContent(m.media_origin, m.filesystem_id));
      await this.removeFile(this.layout.remoteThumbnailDir(m.media_origin, m.filesystem_id));
    }
    if (gone.length > 0) this.d.logger.info({ count: gone.length }, 'purged remote media cache');
    return gone.length;
  }

  /** Removes a file or directory, then the two directory levels of the layout above it if they are now empty. */
  private async removeFile(path: string): Promise<void> {
    try {
      await rm(path, { recursive: true, force: true });
    } catch (err) {
      this.d.logger.warn({ path, err: (err as Error).message }, 'could not remove media file');
      return;
    }
    await this.removeEmptyParents(path);
  }

  private async removeEmptyParents(path: string): Promise<void> {
    let dir = dirname(path);
    for (let i = 0; i < 2; i++) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
      dir = dirname(dir);
    }
  }
}
