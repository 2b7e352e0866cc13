/**
 * The user directory search (POST /user_directory/search): the
 * configuration it follows (`user_directory.enabled`, `search_all_users`,
 * `show_locked_users`, `rc_user_directory`) and the query itself.
 */
import type { Kysely } from 'kysely';
import type { HomeserverConfig } from '../config/types.js';
import type { Schema } from '../storage/schema.js';
import { directoryQueries, searchUserDirectory, type DirectoryRow } from '../storage/user-directory.js';
import type { RateLimiter } from './rate-limit.js';

export type { DirectoryRow };

export interface UserDirectoryDeps {
  readonly db: Kysely<Schema>;
  readonly config: HomeserverConfig;
  readonly rateLimiter: RateLimiter;
}

export class UserDirectoryService {
  private readonly showLocked: boolean;

  constructor(private readonly d: UserDirectoryDeps) {
    const ud = d.config.raw['user_directory'];
    this.showLocked = ud !== null && typeof ud === 'object' && (ud as Record<string, unknown>)['show_locked_users'] === true;
  }

  /**
   * Admits a search by `searcher`: false when the directory is off (every
   * search has no results); a 429 when over `rc_user_directory`.
   */
  admit(searcher: string): boolean {
    if (!this.d.config.user_directory.enabled) return false;
    this.d.rateLimiter.check(`user_directory:${searcher}`, this.d.config.rc_user_directory, { user: searcher });
    return true;
  }

  /** Up to `limit` users matching `term`, and whether more matched. */
  async search(searcher: string, term: string, limit: number): Promise<{ limited: boolean; rows: DirectoryRow[] }> {
    const queries = directoryQueries(term);
    if (!queries) return { limited: false, rows: [] };
    const rows = await searchUserDirectory(this.d.db, {
      searcher,
      ...queries,
      limit: limit + 1,
      searchAllUsers: this.d.config.user_directory.search_all_users,
      showLockedUsers: this.showLocked,
    });
    return { limited: rows.length > limit, rows: rows.slice(0, limit) };
  }
}
