/** The rooms a `restricted`/`knock_restricted` join rule allows (its `m.room_membership` entries), from the join rules content. */
import { isJsonObject } from '../../core/json-values.js';

export function allowedRoomIds(joinRules: Record<string, unknown> | undefined): string[] {
  const allow = joinRules?.['allow'];
  return (Array.isArray(allow) ? allow : []).flatMap((a) => (isJsonObject(a) && a['type'] === 'm.room_membership' && typeof a['room_id'] === 'string' ? [a['room_id']] : []));
}
