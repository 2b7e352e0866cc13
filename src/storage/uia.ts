/** Queries on user-interactive auth sessions and the stages each has completed. */
import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';

export interface UiaSessionRow {
  session_id: string;
  creation_time: number;
  uri: string;
  method: string;
  description: string;
  clientdict: Record<string, unknown>;
  serverdict: Record<string, unknown>;
}

export async function createUiaSession(db: Kysely<Schema>, s: Omit<UiaSessionRow, 'serverdict'>): Promise<void> {
  await db
    .insertInto('ui_auth_sessions')
    .values({ ...s, clientdict: sql`${JSON.stringify(s.clientdict)}::jsonb`, serverdict: sql`'{}'::jsonb` })
    .execute();
}

export async function getUiaSession(db: Kysely<Schema>, sessionId: string): Promise<UiaSessionRow | undefined> {
  return db.selectFrom('ui_auth_sessions').selectAll().where('session_id', '=', sessionId).executeTakeFirst();
}

export async function completedStages(db: Kysely<Schema>, sessionId: string): Promise<Record<string, unknown>> {
  const rows = await db.selectFrom('ui_auth_session_credentials').select(['stage_type', 'result']).where('session_id', '=', sessionId).execute();
  return Object.fromEntries(rows.map((r) => [r.stage_type, r.result]));
}

export async function markStageCompleted(db: Kysely<Schema>, sessionId: string, stage: string, result: unknown): Promise<void> {
  await db
    .insertInto('ui_auth_session_credentials')
    .values({ session_id: sessionId, stage_type: stage, result: sql`${JSON.stringify(result ?? true)}::jsonb` })
    .onConflict((oc) => oc.columns(['session_id', 'stage_type']).doNothing())
    .execute();
}

export async function setUiaServerValue(db: Kysely<Schema>, sessionId: string, key: string, value: unknown): Promise<void> {
  await db
    .updateTable('ui_auth_sessions')
    .set({ serverdict: sql`serverdict || jsonb_build_object(${key}::text, ${JSON.stringify(value)}::jsonb)` })
    .where('session_id', '=', sessionId)
    .execute();
}

export async function deleteExpiredUiaSessions(db: Kysely<Schema>, olderThan: number): Promise<void> {
  await db.deleteFrom('ui_auth_sessions').where('creation_time', '<', olderThan).execute();
}
