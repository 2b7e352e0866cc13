/**
 * The use-counting side of registration tokens (the admin API's create /
 * read / update / delete is in registration-tokens.ts).
 *
 * A token's `pending` counter is the number of rows it has in
 * `registration_token_pending`: a UIA session that passes the
 * `m.login.registration_token` stage holds one row; registering moves that
 * use from `pending` to `completed`; a session that expires or disappears
 * without registering gives its use back. Callers lock the token row
 * (`lockRegistrationToken`) first, inside their transaction, so two
 * sessions cannot both take a token's last use.
 */
import { sql } from 'kysely';
import type { Db, Tx } from './db.js';

export interface TokenCounters {
  token: string;
  uses_allowed: number | null;
  pending: number;
  completed: number;
  expiry_time: number | null;
}

const COLUMNS = ['token', 'uses_allowed', 'pending', 'completed', 'expiry_time'] as const;

/** Reads a token's counters without locking (for the validity endpoint). */
export async function readTokenCounters(db: Db, token: string): Promise<TokenCounters | undefined> {
  return db.selectFrom('registration_tokens').select(COLUMNS).where('token', '=', token).executeTakeFirst();
}

/** Reads a token's counters and locks its row until the transaction ends (SELECT … FOR UPDATE). */
export async function lockRegistrationToken(tx: Tx, token: string): Promise<TokenCounters | undefined> {
  return tx.selectFrom('registration_tokens').select(COLUMNS).where('token', '=', token).forUpdate().executeTakeFirst();
}

/** The token a UIA session holds a use of, if any. */
export async function heldTokenOf(db: Db, sessionId: string): Promise<string | undefined> {
  const row = await db.selectFrom('registration_token_pending').select('token').where('session_id', '=', sessionId).executeTakeFirst();
  return row?.token;
}

/**
 * Records that a session holds one use of a token and counts it in
 * `pending`. False (and nothing changed) when the session holds one already.
 */
export async function holdTokenUse(tx: Tx, sessionId: string, token: string, now: number): Promise<boolean> {
  const row = await tx
    .insertInto('registration_token_pending')
    .values({ session_id: sessionId, token, created_ts: now })
    .onConflict((oc) => oc.column('session_id').doNothing())
    .returning('session_id')
    .executeTakeFirst();
  if (!row) return false;
  await tx
    .updateTable('registration_tokens')
    .set((eb) => ({ pending: eb(eb.ref('pending'), '+', 1) }))
    .where('token', '=', token)
    .execute();
  return true;
}

/**
 * A session registered: its held use moves from `pending` to `completed`.
 * Returns the token, or undefined when the session held none.
 */
export async function completeHeldTokenUse(tx: Tx, sessionId: string): Promise<string | undefined> {
  const row = await tx.deleteFrom('registration_token_pending').where('session_id', '=', sessionId).returning('token').executeTakeFirst();
  if (!row) return undefined;
  await tx
    .updateTable('registration_tokens')
    .set({ pending: sql<number>`greatest(pending - 1, 0)`, completed: sql<number>`completed + 1` })
    .where('token', '=', row.token)
    .execute();
  return row.token;
}

/** Counts a completed use that was not held as pending first. */
export async function countCompletedUse(tx: Tx, token: string): Promise<void> {
  await tx
    .updateTable('registration_tokens')
    .set((eb) => ({ completed: eb(eb.ref('completed'), '+', 1) }))
    .where('token', '=', token)
    .execute();
}

/**
 * Gives back the uses held by sessions that no longer exist or were created
 * before `sessionCutoff` (UIA sessions expire). Returns how many uses were
 * given back. Token rows are locked first, in token order, as the stage and
 * registration lock them before touching held uses, so sweeps never
 * deadlock with them. Safe to run from several processes at once: each
 * held use is deleted, and so counted, once.
 */
export async function releaseAbandonedTokenUses(tx: Tx, sessionCutoff: number): Promise<number> {
  const abandoned = () =>
    tx
      .selectFrom('registration_token_pending as p')
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('ui_auth_sessions as s').select('s.session_id').whereRef('s.session_id', '=', 'p.session_id').where('s.creation_time', '>=', sessionCutoff))),
      );
  const candidates = await abandoned().select('p.token').distinct().orderBy('p.token').execute();
  if (candidates.length === 0) return 0;
  const tokens = candidates.map((c) => c.token);
  await tx.selectFrom('registration_tokens').select('token').where('token', 'in', tokens).orderBy('token').forUpdate().execute();
  const gone = await tx
    .deleteFrom('registration_token_pending')
    .where('session_id', 'in', abandoned().select('p.session_id'))
    .where('token', 'in', tokens)
    .returning('token')
    .execute();
  const counts = new Map<string, number>();
  for (const g of gone) counts.set(g.token, (counts.get(g.token) ?? 0) + 1);
  for (const [token, n] of counts) {
    await tx
      .updateTable('registration_tokens')
      .set({ pending: sql<number>`greatest(pending - ${n}, 0)` })
      .where('token', '=', token)
      .execute();
  }
  return gone.length;
}
