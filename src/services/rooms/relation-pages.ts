/**
 * GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]] and
 * GET /rooms/{roomId}/threads: pages of related events and of thread
 * roots, served as the timeline serves them (serialize.ts), so with their
 * own bundled aggregations (relations.ts).
 */
import type { Kysely } from 'kysely';
import { MatrixError } from '../../matrix-error.js';
import { relationsPage, threadsPage } from '../../storage/relations.js';
import type { Schema } from '../../storage/schema.js';
import { getTimelineEvent, getTimelineEvents, type TimelineEvent, type TopoPosition } from '../../storage/timeline.js';
import { topoTokenAfter, topoTokenBefore } from '../streams/stream-token.js';
import { tokenPosition } from './positions.js';
import { serializeEvents, timelineOptions } from './serialize.js';
import { requireRoomAccess, VisibilityChecker } from './visibility.js';

/** Default and largest page sizes for /relations and /threads (Synapse: default 5, at most 1000). */
const DEFAULT_LIMIT = 5;
const MAX_LIMIT = 1000;
/** How many levels of relations `recurse=true` follows. */
const RECURSION_LEVELS = 3;

export interface RelationsRequest {
  relType?: string;
  eventType?: string;
  from?: string;
  to?: string;
  limit?: number;
  dir: 'b' | 'f';
  recurse?: boolean;
  /** The requesting device (its own events carry their transaction id). */
  deviceId?: string | null;
}

function notFound(): MatrixError {
  return new MatrixError(404, 'M_NOT_FOUND', 'Event not found.');
}

export interface ThreadsRequest {
  include: 'all' | 'participated';
  from?: string;
  limit?: number;
  /** The requesting device (its own events carry their transaction id). */
  deviceId?: string | null;
}

/** /relations and /threads, over the server's database. */
export class RelationPagesService {
  constructor(private readonly db: Kysely<Schema>) {}

  /** GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]. */
  async relations(userId: string, roomId: string, parentId: string, req: RelationsRequest): Promise<Record<string, unknown>> {
    const db = this.db;
    await requireRoomAccess(db, roomId, userId);
    const checker = new VisibilityChecker(db, roomId, userId);
    const parent = await getTimelineEvent(db, parentId);
    if (!parent || parent.room_id !== roomId || parent.outlier || parent.soft_failed || parent.rejected_reason !== null || !(await checker.canSee(parent))) throw notFound();

    const limit = Math.min(req.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
    const from = req.from !== undefined ? await tokenPosition(db, roomId, req.from, 'from') : undefined;
    const to = req.to !== undefined ? await tokenPosition(db, roomId, req.to, 'to') : undefined;
    const rows = await relationsPage(db, {
      parentId,
      roomId,
      relType: req.relType,
      eventType: req.eventType,
      dir: req.dir,
      from,
      to,
      limit: limit + 1,
      levels: req.recurse ? RECURSION_LEVELS : 1,
      excludeEdits: parent.redacted_by !== null,
    });
    const page = rows.slice(0, limit);
    const found = await getTimelineEvents(
      db,
      page.map((r) => r.event_id),
    );
    const events = page.map((r) => found.get(r.event_id)).filter((e): e is TimelineEvent => e !== undefined);
    const visible = await checker.filter(events);
    const res: Record<string, unknown> = { chunk: await serializeEvents(db, visible, timelineOptions(userId, req.deviceId)) };
    const last = page[page.length - 1];
    if (rows.length > limit && last) res['next_batch'] = req.dir === 'b' ? topoTokenBefore(last.depth, last.stream_ordering) : topoTokenAfter(last.depth, last.stream_ordering);
    if (req.from !== undefined) res['prev_batch'] = req.from;
    if (req.recurse !== undefined) res['recursion_depth'] = req.recurse ? RECURSION_LEVELS : 1;
    return res;
  }

  /** GET /rooms/{roomId}/threads: thread roots, latest reply first, with their aggregations. */
  async threads(userId: string, roomId: string, req: ThreadsRequest): Promise<Record<string, unknown>> {
    const db = this.db;
    await requireRoomAccess(db, roomId, userId);
    const limit = Math.min(req.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
    let from: TopoPosition | undefined;
    if (req.from !== undefined) {
      const m = /^t(\d+)_(\d+)$/.exec(req.from);
      if (!m) throw new MatrixError(400, 'M_INVALID_PARAM', 'Unknown pagination token');
      from = { depth: Number(m[1]), stream: Number(m[2]) };
    }
    const rows = await threadsPage(db, roomId, { from, limit: limit + 1, participant: req.include === 'participated' ? userId : undefined });
    const page = rows.slice(0, limit);
    const found = await getTimelineEvents(
      db,
      page.map((r) => r.thread_id),
    );
    const roots = page.map((r) => found.get(r.thread_id)).filter((e): e is TimelineEvent => e !== undefined && e.room_id === roomId);
    const visible = await new VisibilityChecker(db, roomId, userId).filter(roots);
    const res: Record<string, unknown> = { chunk: await serializeEvents(db, visible, timelineOptions(userId, req.deviceId)) };
    const last = page[page.length - 1];
    if (rows.length > limit && last) res['next_batch'] = topoTokenBefore(last.latest_depth, last.latest_stream_ordering);
    return res;
  }
}
