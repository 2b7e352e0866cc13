/**
 * Which thread an event belongs to, for threaded receipts and per-thread
 * notification counts: the root of an `m.thread` relation; or, for an event
 * that relates to another one (a reaction, an edit, a reference), the
 * thread of that parent, followed at most MAX_HOPS relations up as the spec
 * recommends; otherwise the main timeline. Thread roots themselves are in
 * the main timeline.
 */
import type { JsonObject } from '../../core/pdu.js';

export const MAIN_THREAD = 'main';
const MAX_HOPS = 3;

/** Looks an event's JSON up by id (in the same room), or undefined. */
export type EventLookup = (eventId: string) => Promise<JsonObject | undefined>;

interface Relation {
  relType: string;
  parentId: string;
}

export function relationOf(event: JsonObject): Relation | undefined {
  const content = event['content'];
  if (content === null || typeof content !== 'object' || Array.isArray(content)) return undefined;
  const rel = content['m.relates_to'];
  if (rel === null || typeof rel !== 'object' || Array.isArray(rel)) return undefined;
  const relType = rel['rel_type'];
  const parentId = rel['event_id'];
  if (typeof relType !== 'string' || typeof parentId !== 'string') return undefined;
  return { relType, parentId };
}

/** The thread id of an event: a thread root's event id, or `main`. */
export async function threadIdOf(event: JsonObject, lookup: EventLookup): Promise<string> {
  let cur: JsonObject | undefined = event;
  for (let hop = 0; hop <= MAX_HOPS && cur; hop++) {
    const rel = relationOf(cur);
    if (!rel) return MAIN_THREAD;
    if (rel.relType === 'm.thread') return rel.parentId;
    if (hop === MAX_HOPS) break;
    cur = await lookup(rel.parentId);
  }
  return MAIN_THREAD;
}

/**
 * Whether a receipt for `threadId` fits the event it names, as Synapse
 * checks: `main` for events of the main timeline; a root's id for the root
 * itself, the thread's events, and events related to either.
 */
export async function receiptFitsThread(eventId: string, event: JsonObject, threadId: string, lookup: EventLookup): Promise<boolean> {
  const thread = await threadIdOf(event, lookup);
  if (threadId === MAIN_THREAD) return thread === MAIN_THREAD;
  if (thread === threadId || eventId === threadId) return true;
  // Related (not through a thread) to the root: a reaction to the root, an edit of it, ...
  let cur: JsonObject | undefined = event;
  for (let hop = 0; hop < MAX_HOPS && cur; hop++) {
    const rel = relationOf(cur);
    if (!rel) return false;
    if (rel.parentId === threadId) return true;
    cur = await lookup(rel.parentId);
  }
  return false;
}
