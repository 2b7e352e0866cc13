/**
 * Pagination tokens to positions in a room's topological order. A `t`
 * token names its position directly; a sync token (`s…`) names a stream
 * position, placed at the depth of the room's last event at or before it.
 */
import { MatrixError } from '../../matrix-error.js';
import { positionAtStream, type TopoPosition } from '../../storage/timeline.js';
import { decodeTimelineToken } from '../streams/stream-token.js';
import type { Db } from '../../storage/db.js';

/** The position a token names in this room; 400 M_INVALID_PARAM naming the parameter when it does not parse. */
export async function tokenPosition(db: Db, roomId: string, token: string, param: string): Promise<TopoPosition> {
  let decoded: { depth?: number; stream: number };
  try {
    decoded = decodeTimelineToken(token);
  } catch {
    throw new MatrixError(400, 'M_INVALID_PARAM', `'${param}' parameter is invalid`);
  }
  if (decoded.depth !== undefined) return { depth: decoded.depth, stream: decoded.stream };
  return positionAtStream(db, roomId, decoded.stream);
}

/** The earlier of two positions. */
export function minPosition(a: TopoPosition, b: TopoPosition): TopoPosition {
  return a.depth < b.depth || (a.depth === b.depth && a.stream <= b.stream) ? a : b;
}
