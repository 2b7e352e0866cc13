/**
 * Event relationships (`m.relates_to`): indexing them as events are stored,
 * checking the ones a client sends, and the bundled aggregations served in `unsigned["m.relations"]`
 * (/relations and /threads pages are in relation-pages.ts):
 * - `m.thread` on a thread root: `{latest_event, count, current_user_participated}`;
 *   the latest reply carries its own edit;
 * - `m.replace`: the latest applicable edit, as a whole event (MSC3925, as
 *   Synapse serves it); the original's content is left as it is;
 * - `m.reference`: `{chunk: [{event_id}]}`.
 * State events, edits and annotations get no aggregations. Replies
 * (`m.in_reply_to` without `rel_type`) are not relations here: they are
 * stored and served as they are.
 */
import type { JsonObject } from '../../core/pdu.js';
import { MatrixError } from '../../matrix-error.js';
import { getEvent, getEvents, type StoredEvent } from '../../storage/events.js';
import {
  addThreadReply,
  deleteRelation,
  hasAnnotated,
  insertRelation,
  isRelationTarget,
  latestEdits,
  recomputeThread,
  referencesOf,
  relationOf,
  relationTargets,
  threadsRepliedTo,
  threadSummaries,
} from '../../storage/relations.js';
import { toClientEvent, type ClientEvent } from './client-event.js';
import type { Db, Tx } from '../../storage/db.js';

export interface Relation {
  relType: string;
  eventId: string;
  /** An annotation's key. */
  key?: string;
}

/** The relation an event's content declares (`rel_type` and `event_id` both strings), if any. */
export function relationOfContent(content: unknown): Relation | undefined {
  if (content === null || typeof content !== 'object') return undefined;
  const r = (content as Record<string, unknown>)['m.relates_to'];
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return undefined;
  const rel = r as Record<string, unknown>;
  if (typeof rel['rel_type'] !== 'string' || typeof rel['event_id'] !== 'string') return undefined;
  const out: Relation = { relType: rel['rel_type'], eventId: rel['event_id'] };
  if (rel['rel_type'] === 'm.annotation' && typeof rel['key'] === 'string') out.key = rel['key'];
  return out;
}

/** Longest annotation key accepted, as Synapse. */
const MAX_ANNOTATION_KEY = 500;

/**
 * Checks the relation of an event a local client sends (as Synapse does):
 * the parent is in the same room (or, if we do not hold it, other events
 * already relate to it); one annotation per sender, type and key; no
 * thread off an event that itself has a relation.
 */
async function validateRelation(db: Db, roomId: string, sender: string, type: string, rel: Relation): Promise<void> {
  const parent = await getEvent(db, rel.eventId);
  if (parent) {
    if (parent.room_id !== roomId) throw new MatrixError(400, 'M_UNKNOWN', 'Relations must be in the same room');
  } else if (!(await isRelationTarget(db, rel.eventId))) {
    throw new MatrixError(400, 'M_UNKNOWN', "Can't send relation to unknown event");
  }
  if (rel.relType === 'm.annotation') {
    if (rel.key === undefined) throw new MatrixError(400, 'M_UNKNOWN', 'Missing aggregation key');
    if (rel.key.length > MAX_ANNOTATION_KEY) throw new MatrixError(400, 'M_UNKNOWN', 'Aggregation key is too long');
    if (await hasAnnotated(db, rel.eventId, type, rel.key, sender)) throw new MatrixError(400, 'M_DUPLICATE_ANNOTATION', "Can't send same reaction twice");
  } else if (rel.relType === 'm.thread') {
    if (await relationOf(db, rel.eventId)) throw new MatrixError(400, 'M_UNKNOWN', 'Cannot start threads from an event with a relation');
  }
}

export interface StoredForRelations {
  eventId: string;
  roomId: string;
  type: string;
  sender: string;
  content: JsonObject;
  depth: number;
  streamOrdering: number;
  originServerTs: number;
  /** The event this one redacted, when it is a redaction that was applied. */
  redacted?: string;
}

/**
 * The event pipeline's hook, inside the event's transaction: checks and
 * indexes the event's relation, and drops the relation of an event it
 * redacted (its content, so its relation, is gone). `validate` is for events
 * our clients send; events from other servers are indexed as they are.
 */
export async function recordEventRelations(tx: Tx, e: StoredForRelations, opts: { validate: boolean }): Promise<void> {
  const rel = relationOfContent(e.content);
  if (rel) {
    if (opts.validate) await validateRelation(tx, e.roomId, e.sender, e.type, rel);
    await insertRelation(tx, {
      event_id: e.eventId,
      room_id: e.roomId,
      relates_to_id: rel.eventId,
      relation_type: rel.relType,
      aggregation_key: rel.key ?? null,
      sender: e.sender,
      type: e.type,
      depth: e.depth,
      stream_ordering: e.streamOrdering,
      origin_server_ts: e.originServerTs,
    });
    if (rel.relType === 'm.thread') await addThreadReply(tx, { threadId: rel.eventId, roomId: e.roomId, eventId: e.eventId, depth: e.depth, stream: e.streamOrdering });
  }
  if (e.redacted !== undefined) {
    const removed = await deleteRelation(tx, e.redacted);
    if (removed?.relation_type === 'm.thread') await recomputeThread(tx, removed.relates_to_id);
  }
}

/**
 * Bundled aggregations for these events, as `unsigned["m.relations"]`
 * values by event id (events without any are absent).
 */
export async function bundleAggregations(db: Db, events: readonly StoredEvent[], userId: string, now = Date.now()): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  const candidates = new Map<string, StoredEvent>();
  const roots: StoredEvent[] = [];
  for (const e of events) {
    if (e.state_key !== null || candidates.has(e.event_id)) continue;
    const rel = relationOfContent(e.json['content']);
    if (rel && (rel.relType === 'm.annotation' || rel.relType === 'm.replace')) continue;
    candidates.set(e.event_id, e);
    // An event that relates to another cannot be a thread root.
    if (!rel) roots.push(e);
  }
  if (candidates.size === 0) return out;
  // Most events have no children: one probe, and nothing more to read for them.
  const parents = await relationTargets(db, [...candidates.keys()]);
  if (parents.size === 0) return out;
  for (const id of [...candidates.keys()]) if (!parents.has(id)) candidates.delete(id);

  const summaries = await threadSummaries(
    db,
    roots.filter((e) => parents.has(e.event_id)).map((e) => e.event_id),
  );
  const latestIds = [...summaries.values()].map((s) => s.latest_event_id);
  const notSentByUser = [...summaries.keys()].filter((id) => candidates.get(id)?.sender !== userId);
  const [latest, replied, references] = await Promise.all([getEvents(db, latestIds), threadsRepliedTo(db, notSentByUser, userId), referencesOf(db, [...candidates.keys()])]);

  // Edits, for the events themselves and for the latest thread replies (unless redacted).
  const editable = [...candidates.values(), ...latest.values()].filter((e) => !e.redacted_by);
  const editIds = await latestEdits(
    db,
    editable.map((e) => ({ event_id: e.event_id, sender: e.sender, type: e.type })),
  );
  const edits = await getEvents(db, [...editIds.values()]);
  const editOf = (id: string): ClientEvent | undefined => {
    const editId = editIds.get(id);
    const edit = editId !== undefined ? edits.get(editId) : undefined;
    return edit ? toClientEvent(edit, now) : undefined;
  };

  for (const [id, e] of candidates) {
    const bundle: Record<string, unknown> = {};
    const summary = summaries.get(id);
    const latestEvent = summary ? latest.get(summary.latest_event_id) : undefined;
    if (summary && latestEvent) {
      const latestEdit = editOf(latestEvent.event_id);
      bundle['m.thread'] = {
        latest_event: toClientEvent(latestEvent, now, latestEdit ? { 'm.relations': { 'm.replace': latestEdit } } : undefined),
        count: Number(summary.reply_count),
        current_user_participated: e.sender === userId || replied.has(id),
      };
    }
    if (!e.redacted_by) {
      const edit = editOf(id);
      if (edit) bundle['m.replace'] = edit;
    }
    const refs = references.get(id);
    if (refs && refs.length > 0) bundle['m.reference'] = { chunk: refs.map((event_id) => ({ event_id })) };
    if (Object.keys(bundle).length > 0) out.set(id, bundle);
  }
  return out;
}
