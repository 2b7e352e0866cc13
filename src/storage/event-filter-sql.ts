/**
 * The SQL half of a timeline filter (services/rooms/event-filter.ts checks
 * the same conditions in memory): types and not_types (`*` as LIKE's `%`),
 * senders and not_senders, contains_url. /sync timelines and /messages,
 * /context pages share it, so a filter means the same in both.
 */
import { sql, type RawBuilder } from 'kysely';
import { textArray } from './sql-arrays.js';

/** What a RoomEventFilter asks of each event, as SQL can check it. */
export interface EventSqlFilter {
  types?: readonly string[];
  notTypes: readonly string[];
  senders?: readonly string[];
  notSenders: readonly string[];
  containsUrl?: boolean;
}

function likePattern(glob: string): string {
  return glob.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%');
}

function typeCondition(patterns: readonly string[]): RawBuilder<boolean> {
  const exact = patterns.filter((p) => !p.includes('*'));
  const likes = patterns.filter((p) => p.includes('*')).map(likePattern);
  const parts: RawBuilder<boolean>[] = [];
  if (exact.length > 0) parts.push(sql<boolean>`e.type = ANY(${textArray(exact)})`);
  for (const l of likes) parts.push(sql<boolean>`e.type LIKE ${l} ESCAPE '\\'`);
  if (parts.length === 0) return sql<boolean>`false`;
  return sql<boolean>`(${sql.join(parts, sql` OR `)})`;
}

/**
 * The condition on `events e` for a timeline: no outliers, no rejected
 * or soft-failed events, and what the filter (when given) asks.
 */
export function timelineCondition(f: EventSqlFilter | undefined): RawBuilder<boolean> {
  const parts: RawBuilder<boolean>[] = [sql<boolean>`NOT e.outlier`, sql<boolean>`e.rejected_reason IS NULL`, sql<boolean>`NOT e.soft_failed`];
  if (f) {
    if (f.types !== undefined) parts.push(typeCondition(f.types));
    if (f.notTypes.length > 0) parts.push(sql<boolean>`NOT ${typeCondition(f.notTypes)}`);
    if (f.senders !== undefined) parts.push(f.senders.length === 0 ? sql<boolean>`false` : sql<boolean>`e.sender = ANY(${textArray(f.senders)})`);
    if (f.notSenders.length > 0) parts.push(sql<boolean>`NOT (e.sender = ANY(${textArray(f.notSenders)}))`);
    if (f.containsUrl === true) parts.push(sql<boolean>`jsonb_typeof(e.json->'content'->'url') = 'string'`);
    if (f.containsUrl === false) parts.push(sql<boolean>`jsonb_typeof(e.json->'content'->'url') IS DISTINCT FROM 'string'`);
  }
  return sql<boolean>`${sql.join(parts, sql` AND `)}`;
}
