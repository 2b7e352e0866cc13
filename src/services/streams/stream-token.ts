/**
 * Positions clients sync and paginate from, as opaque strings that survive
 * a restart (they are database positions, never process state).
 *
 * - Sync tokens: one position per stream, `s<events>_<account_data>_<receipts>_<typing>_<to_device>_<device_lists>_<presence>`.
 *   Typing lives in memory, so its position restarts at 0 with the process;
 *   a token from before a restart then simply reports no typing change.
 * - Timeline tokens (/messages, prev_batch): `t<depth>_<stream_ordering>`,
 *   a point in the room's topological order; a sync token is accepted too
 *   (its events position, as Synapse accepts both).
 */
import { MatrixError } from '../../matrix-error.js';

export interface StreamToken {
  events: number;
  accountData: number;
  receipts: number;
  typing: number;
  toDevice: number;
  deviceLists: number;
  presence: number;
}

const FIELDS = ['events', 'accountData', 'receipts', 'typing', 'toDevice', 'deviceLists', 'presence'] as const;

export const ZERO_TOKEN: StreamToken = Object.freeze({ events: 0, accountData: 0, receipts: 0, typing: 0, toDevice: 0, deviceLists: 0, presence: 0 });

export function encodeStreamToken(t: StreamToken): string {
  return `s${FIELDS.map((f) => t[f]).join('_')}`;
}

function badToken(): MatrixError {
  return new MatrixError(400, 'M_INVALID_PARAM', 'Invalid stream token');
}

export function decodeStreamToken(s: string): StreamToken {
  const m = /^s(\d+(?:_\d+)*)$/.exec(s);
  if (!m) throw badToken();
  const parts = (m[1] as string).split('_').map(Number);
  if (parts.length > FIELDS.length || parts.some((n) => !Number.isSafeInteger(n))) throw badToken();
  const out = { ...ZERO_TOKEN };
  FIELDS.forEach((f, i) => {
    out[f] = parts[i] ?? 0;
  });
  return out;
}

export interface TopoToken {
  depth: number;
  stream: number;
}

export function encodeTopoToken(t: TopoToken): string {
  return `t${t.depth}_${t.stream}`;
}

/** A timeline position from a `t` token, or from a sync token (then depth is unknown: only the stream position counts). */
export function decodeTimelineToken(s: string): { depth?: number; stream: number } {
  // Backfilled events have stream orderings below zero (events_backfill_stream).
  const m = /^t(\d+)_(-?\d+)$/.exec(s);
  if (m) {
    const depth = Number(m[1]);
    const stream = Number(m[2]);
    if (Number.isSafeInteger(depth) && Number.isSafeInteger(stream)) return { depth, stream };
    throw badToken();
  }
  return { stream: decodeStreamToken(s).events };
}

/*
 * What a timeline token means (as Synapse's tokens do): `t<d>_<s>` is the
 * point just after the event at (depth d, stream s). Paginating backwards
 * from it returns that event and those before it; forwards returns the
 * events after it. So a /sync timeline whose first event is at (d, s) has
 * prev_batch `topoTokenBefore(d, s)`, and an event's own position is
 * `topoTokenAfter(d, s)`.
 */

/** The token just after an event: backwards pagination from it starts with the event. */
export function topoTokenAfter(depth: number, stream: number): string {
  return encodeTopoToken({ depth, stream });
}

/** The token just before an event: backwards pagination from it starts with the event before. */
export function topoTokenBefore(depth: number, stream: number): string {
  return encodeTopoToken({ depth, stream: stream - 1 });
}
