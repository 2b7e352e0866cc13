/**
 * Event shapes particular to /sync: events without `room_id` (the spec's
 * ClientEventWithoutRoomID), a filter's `event_fields` (dot-separated
 * paths, `\.` for a literal dot, split as push rule keys are), the
 * `federation` event format, and stripped state for invites and knocks.
 */
import { splitPropertyPath } from '../push/evaluator.js';
import type { ClientEvent } from '../rooms/client-event.js';
import { objectOrEmpty } from '../../core/json-values.js';

/** Keeps only the listed fields of an event (a path to an object keeps all of it). */
export function projectFields(event: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const path = splitPropertyPath(f);
    let src: unknown = event;
    for (const p of path) {
      if (src === null || typeof src !== 'object' || Array.isArray(src) || !(p in (src as object))) {
        src = undefined;
        break;
      }
      src = (src as Record<string, unknown>)[p];
    }
    if (src === undefined) continue;
    let dst = out;
    for (let i = 0; i < path.length - 1; i++) {
      const p = path[i] as string;
      const next = dst[p];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) dst[p] = {};
      dst = dst[p] as Record<string, unknown>;
    }
    dst[path[path.length - 1] as string] = src;
  }
  return out;
}

/** A client event as /sync sends it: without `room_id`, and trimmed to `event_fields` when given. */
export function syncClientEvent(e: ClientEvent, fields: readonly string[] | undefined): Record<string, unknown> {
  const { room_id: _roomId, ...rest } = e;
  return fields ? projectFields(rest, fields) : rest;
}

export type { StrippedEvent as StrippedStateEvent } from '../rooms/prejoin-state.js';
import type { StrippedEvent as StrippedStateEvent } from '../rooms/prejoin-state.js';

export function stripped(e: { type: string; state_key: string; sender: string; content: unknown }): StrippedStateEvent {
  const content = objectOrEmpty(e.content);
  return { type: e.type, state_key: e.state_key, sender: e.sender, content };
}

/** The state shown to invitees and knockers (rooms/prejoin-state.ts holds the list, for federation's invites and knocks too). */
export { PREJOIN_STATE_TYPES as STRIPPED_STATE_TYPES } from '../rooms/prejoin-state.js';
