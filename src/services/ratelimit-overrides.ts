/**
 * Synapse's per-user rate-limit overrides (the `ratelimit_override` table,
 * managed through /_synapse/admin/v1/users/<user_id>/override_ratelimit).
 * All rows are held in memory, read once at startup and kept in step by the
 * writes made here, so the limiter consults them without a query. As in
 * Synapse, an override of 0 messages per second exempts the user from every
 * rate limit checked for them; other values replace rc_message for them.
 */
import type { Kysely } from 'kysely';
import { MatrixError } from '../matrix-error.js';
import { deleteRatelimitOverride, listRatelimitOverrides, setRatelimitOverride } from '../storage/ratelimit-overrides.js';
import type { Schema } from '../storage/schema.js';
import { getUser } from '../storage/users.js';
import type { OverrideSource, RatelimitOverride } from './rate-limit.js';

const userNotFound = () => new MatrixError(404, 'M_NOT_FOUND', 'User not found');

export class RatelimitOverrides implements OverrideSource {
  private readonly byUser = new Map<string, RatelimitOverride>();

  constructor(private readonly db: Kysely<Schema>) {}

  /** Reads every override into memory (at startup). */
  async load(): Promise<void> {
    this.byUser.clear();
    for (const r of await listRatelimitOverrides(this.db)) {
      this.byUser.set(r.user_id, { messages_per_second: r.messages_per_second, burst_count: r.burst_count });
    }
  }

  get(userId: string): RatelimitOverride | undefined {
    return this.byUser.get(userId);
  }

  /** The user's override, for the admin API (404 for an unknown user). */
  async read(userId: string): Promise<RatelimitOverride | undefined> {
    if (!(await getUser(this.db, userId))) throw userNotFound();
    return this.get(userId);
  }

  /** Sets (or replaces) the user's override (404 for an unknown user). */
  async set(userId: string, o: RatelimitOverride): Promise<RatelimitOverride> {
    await this.db.transaction().execute(async (tx) => {
      if (!(await getUser(tx, userId))) throw userNotFound();
      await setRatelimitOverride(tx, { user_id: userId, ...o });
    });
    const kept = { messages_per_second: o.messages_per_second, burst_count: o.burst_count };
    this.byUser.set(userId, kept);
    return kept;
  }

  /** Removes the user's override, if any (404 for an unknown user). */
  async remove(userId: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      if (!(await getUser(tx, userId))) throw userNotFound();
      await deleteRatelimitOverride(tx, userId);
    });
    this.byUser.delete(userId);
  }
}
