/**
 * Events as clients see them (the spec's ClientEvent): the PDU's public
 * fields plus `event_id`, `unsigned.age` and, for the sender's own device,
 * `unsigned.transaction_id`.
 */
import type { StoredEvent } from '../../storage/events.js';

export interface ClientEvent {
  content: Record<string, unknown>;
  event_id: string;
  origin_server_ts: number;
  room_id: string;
  sender: string;
  type: string;
  state_key?: string;
  redacts?: string;
  unsigned: Record<string, unknown>;
}

export function toClientEvent(e: StoredEvent, now = Date.now(), extraUnsigned?: Record<string, unknown>): ClientEvent {
  const json = e.json;
  const out: ClientEvent = {
    content: (json['content'] as Record<string, unknown> | undefined) ?? {},
    event_id: e.event_id,
    origin_server_ts: e.origin_server_ts,
    room_id: e.room_id,
    sender: e.sender,
    type: e.type,
    unsigned: { age: Math.max(0, now - e.origin_server_ts), ...extraUnsigned },
  };
  if (e.state_key !== null) out.state_key = e.state_key;
  // Redactions name their target at the top level for every room version, as Synapse serves them.
  const redacts = json['redacts'] ?? (e.type === 'm.room.redaction' ? out.content['redacts'] : undefined);
  if (typeof redacts === 'string') out.redacts = redacts;
  if (e.redacted_by) out.unsigned.redacted_by = e.redacted_by;
  return out;
}
