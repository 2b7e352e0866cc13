/** Queries on profiles (display name and avatar URL of local users). */
import type { Db } from './db.js';

export type ProfileField = 'displayname' | 'avatar_url';

/** Sets one profile field (null clears it); false when the user has no profile row. */
export async function setProfileField(db: Db, userId: string, field: ProfileField, value: string | null): Promise<boolean> {
  const r = await db
    .updateTable('profiles')
    .set(field === 'displayname' ? { displayname: value } : { avatar_url: value })
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}
