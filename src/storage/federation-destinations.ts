/**
 * Destinations of the federation sender (migration 0019): their retry
 * state, and the reads of the destinations admin API.
 */
import { sql } from 'kysely';
import type { Db } from './db.js';
import type { FederationDestinationsTable } from './schema.js';

export type DestinationRow = Omit<FederationDestinationsTable, 'catching_up'> & { catching_up: boolean };

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function normalise(r: DestinationRow): DestinationRow {
  return {
    destination: r.destination,
    retry_last_ts: num(r.retry_last_ts),
    retry_interval: num(r.retry_interval),
    failure_ts: num(r.failure_ts),
    last_successful_stream_ordering: num(r.last_successful_stream_ordering),
    txn_id: r.txn_id,
    catching_up: r.catching_up,
  };
}

const COLUMNS = ['destination', 'retry_last_ts', 'retry_interval', 'failure_ts', 'last_successful_stream_ordering', 'txn_id', 'catching_up'] as const;

export async function getDestination(db: Db, destination: string): Promise<DestinationRow | undefined> {
  const r = await db.selectFrom('federation_destinations').select(COLUMNS).where('destination', '=', destination).executeTakeFirst();
  return r && normalise(r);
}

/** A failed attempt (the destination is catching up from now on): the next is not before `now + interval`; `failure_ts` keeps the start of the failures. */
export async function recordFailure(db: Db, destination: string, now: number, interval: number): Promise<void> {
  await db
    .updateTable('federation_destinations')
    .set({ retry_last_ts: now, retry_interval: interval, failure_ts: sql<number>`COALESCE(failure_ts, ${now})`, catching_up: true })
    .where('destination', '=', destination)
    .execute();
}

/** Forgets the backoff (reset_connection); returns whether the destination is known. */
export async function clearBackoff(db: Db, destination: string): Promise<boolean> {
  const r = await db
    .updateTable('federation_destinations')
    .set({ retry_last_ts: 0, retry_interval: 0, failure_ts: null })
    .where('destination', '=', destination)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export const DESTINATION_ORDER_BY = ['destination', 'retry_last_ts', 'retry_interval', 'failure_ts', 'last_successful_stream_ordering'] as const;
export type DestinationOrderBy = (typeof DESTINATION_ORDER_BY)[number];

/** LIKE pattern text with its wildcards taken literally. */
function likeLiteral(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * A page of destinations (a case-insensitive substring filter on the name,
 * its `%` and `_` taken literally), ordered by `orderBy` in `dir` (NULLs
 * as PostgreSQL places them), ties by name ascending, as Synapse; and the
 * total that match.
 */
export async function listDestinations(
  db: Db,
  o: { from: number; limit: number; filter?: string; orderBy: DestinationOrderBy; dir: 'f' | 'b' },
): Promise<{ rows: DestinationRow[]; total: number }> {
  let base = db.selectFrom('federation_destinations');
  if (o.filter) base = base.where(sql<boolean>`lower(destination) LIKE ${`%${likeLiteral(o.filter.toLowerCase())}%`}`);
  const direction = o.dir === 'b' ? 'desc' : 'asc';
  const [rows, count] = await Promise.all([
    base.select(COLUMNS).orderBy(sql.ref(o.orderBy), direction).orderBy('destination', 'asc').offset(o.from).limit(o.limit).execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst(),
  ]);
  return { rows: rows.map(normalise), total: Number(count?.n ?? 0) };
}

/** A page of the rooms PDUs were queued in for the destination, by room id, with the newest queued stream ordering. */
export async function destinationRooms(
  db: Db,
  o: { destination: string; from: number; limit: number; dir: 'f' | 'b' },
): Promise<{ rows: { room_id: string; stream_ordering: number }[]; total: number }> {
  const base = db.selectFrom('federation_destination_rooms').where('destination', '=', o.destination);
  const [rows, count] = await Promise.all([
    base
      .select(['room_id', 'stream_ordering'])
      .orderBy('room_id', o.dir === 'b' ? 'desc' : 'asc')
      .offset(o.from)
      .limit(o.limit)
      .execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst(),
  ]);
  return { rows: rows.map((r) => ({ room_id: r.room_id, stream_ordering: Number(r.stream_ordering) })), total: Number(count?.n ?? 0) };
}
