/**
 * A room's stripped state as shown before joining (the spec's
 * `invite_room_state`/`knock_room_state`, Synapse's default
 * `room_prejoin_state`): the create event, join rules, name, avatar, topic,
 * canonical alias and encryption, as {type, state_key, sender, content}.
 */
import { objectOrEmpty } from '../../core/json-values.js';
import type { Db } from '../../storage/db.js';
import { getEvents } from '../../storage/events.js';
import { currentState } from '../../storage/state.js';

export const PREJOIN_STATE_TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.topic', 'm.room.canonical_alias', 'm.room.encryption'] as const;

export interface StrippedEvent {
  type: string;
  state_key: string;
  sender: string;
  content: Record<string, unknown>;
}

export async function prejoinState(db: Db, roomId: string): Promise<StrippedEvent[]> {
  const rows = await currentState(
    db,
    roomId,
    PREJOIN_STATE_TYPES.map((t) => [t, ''] as const),
  );
  const events = await getEvents(
    db,
    rows.map((r) => r.event_id),
  );
  return rows.flatMap((r) => {
    const e = events.get(r.event_id);
    const content = e?.json['content'];
    return e
      ? [{ type: e.type, state_key: e.state_key ?? '', sender: e.sender, content: typeof content === 'object' && content !== null ? (content as Record<string, unknown>) : {} }]
      : [];
  });
}
