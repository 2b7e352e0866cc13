/**
 * Per-user facts every incremental sync needs and that rarely change: the
 * user's memberships and their ignored users. Each is remembered with the
 * stream position it was read at, and reused only when the sync's own
 * queries show nothing changed since (no membership event of the user, no
 * `m.ignored_user_list` write), so a cached value is never stale. Bounded
 * (LRU); a miss only costs the query.
 */
import type { MembershipRow } from '../../storage/sync.js';

const MAX_USERS = 2000;

interface Entry {
  memberships?: { pos: number; rows: MembershipRow[] };
  ignored?: { pos: number; users: Set<string> };
}

export class SyncUserCache {
  private readonly users = new Map<string, Entry>();

  private entry(userId: string): Entry {
    let e = this.users.get(userId);
    if (e) {
      this.users.delete(userId);
    } else {
      e = {};
      if (this.users.size >= MAX_USERS) this.users.delete(this.users.keys().next().value as string);
    }
    this.users.set(userId, e);
    return e;
  }

  /** Memberships read at events position `pos`, still valid for a sync from `since` when no membership event of the user lies in (since, now]. */
  memberships(userId: string, since: number): MembershipRow[] | undefined {
    const m = this.users.get(userId)?.memberships;
    return m && m.pos >= since ? m.rows : undefined;
  }

  setMemberships(userId: string, pos: number, rows: MembershipRow[]): void {
    const e = this.entry(userId);
    if (!e.memberships || e.memberships.pos <= pos) e.memberships = { pos, rows };
  }

  /** Ignored users read at account-data position `pos`, valid for a sync from `since` when no m.ignored_user_list write lies in (since, now]. */
  ignored(userId: string, since: number): Set<string> | undefined {
    const i = this.users.get(userId)?.ignored;
    return i && i.pos >= since ? i.users : undefined;
  }

  setIgnored(userId: string, pos: number, users: Set<string>): void {
    const e = this.entry(userId);
    if (!e.ignored || e.ignored.pos <= pos) e.ignored = { pos, users };
  }
}
