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
import { deleteOldRemoteMedia } from '../../storage/media-admin.js';
import type { Schema } from '../../storage/schema.js';
import { isValidMediaId, isValidServerName, MediaLayout } from './layout.js';
import type { MediaRepository } from './repository.js';
import { withSubsystemLogger } from '../../logger.js';

export interface MediaAdminDeps {
  db: Kysely<Schema>;
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
