/**
 * The bodies sent to a push gateway (push gateway API `POST
 * /_matrix/push/v1/notify`), built as Synapse builds them:
 *
 * - `devices`: the one pusher, with its `data` minus `url` (the spec: the
 *   whole of it, `format` and custom keys included), `pushkey_ts` in
 *   seconds, and the tweaks of the notification's actions (a `set_tweak`
 *   without `value` is true).
 * - `prio`: "high" when the notification sounds or highlights, or the event
 *   is encrypted (its effect is unknown); otherwise "low".
 * - `format: "event_id_only"`: only event_id, room_id, prio, counts and the
 *   device, without tweaks. Otherwise the event's type, sender, content
 *   (unless `push.include_content: false`), the sender's display name and
 *   the room's name (its name or canonical alias) and alias; for member
 *   events `membership` and `user_is_target`.
 * - `counts.unread` is always sent, 0 included, as Synapse does: a 0 is how
 *   a gateway learns to clear the app's badge.
 */
import type { PusherRow } from '../../storage/pushers.js';

export interface NotifiedEvent {
  event_id: string;
  room_id: string;
  type: string;
  sender: string;
  state_key?: string;
  content: Record<string, unknown>;
}

/** What the room looked like for the event (state before it). */
export interface RoomContext {
  senderDisplayName?: string;
  roomName?: string;
  roomAlias?: string;
}

/** The tweaks a notification's actions set. */
export function tweaksOf(actions: readonly unknown[]): Record<string, unknown> {
  const tweaks: Record<string, unknown> = {};
  for (const a of actions) {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) continue;
    const o = a as Record<string, unknown>;
    if (typeof o['set_tweak'] === 'string') tweaks[o['set_tweak']] = 'value' in o ? o['value'] : true;
  }
  return tweaks;
}

export function priorityOf(eventType: string, tweaks: Record<string, unknown>): 'high' | 'low' {
  return eventType === 'm.room.encrypted' || Boolean(tweaks['highlight']) || Boolean(tweaks['sound']) ? 'high' : 'low';
}

/** The pusher's data as the gateway gets it: everything but `url`. */
export function gatewayData(pusher: PusherRow): Record<string, unknown> {
  const { url: _url, ...rest } = pusher.data;
  return rest;
}

function device(pusher: PusherRow, tweaks?: Record<string, unknown>): Record<string, unknown> {
  const d: Record<string, unknown> = {
    app_id: pusher.app_id,
    pushkey: pusher.pushkey,
    pushkey_ts: Math.floor(pusher.pushkey_ts / 1000),
    data: gatewayData(pusher),
  };
  if (tweaks && Object.keys(tweaks).length > 0) d['tweaks'] = tweaks;
  return d;
}

export function eventIdOnly(pusher: PusherRow): boolean {
  return pusher.data['format'] === 'event_id_only';
}

/** The notification for one event. */
export function eventNotification(
  pusher: PusherRow,
  ev: NotifiedEvent,
  actions: readonly unknown[],
  unread: number,
  room: RoomContext,
  opts: { includeContent: boolean },
): { notification: Record<string, unknown> } {
  const tweaks = tweaksOf(actions);
  const prio = priorityOf(ev.type, tweaks);
  if (eventIdOnly(pusher)) {
    return { notification: { event_id: ev.event_id, room_id: ev.room_id, prio, counts: { unread }, devices: [device(pusher)] } };
  }
  const n: Record<string, unknown> = { event_id: ev.event_id, room_id: ev.room_id, type: ev.type, sender: ev.sender, prio, counts: { unread } };
  if (ev.type === 'm.room.member' && ev.state_key !== undefined) {
    n['membership'] = ev.content['membership'];
    n['user_is_target'] = ev.state_key === pusher.user_id;
  }
  if (opts.includeContent && Object.keys(ev.content).length > 0) n['content'] = ev.content;
  if (room.senderDisplayName) n['sender_display_name'] = room.senderDisplayName;
  if (room.roomName) n['room_name'] = room.roomName;
  if (room.roomAlias) n['room_alias'] = room.roomAlias;
  n['devices'] = [device(pusher, tweaks)];
  return { notification: n };
}

/** A badge-only notification (no event): the user's unread count changed, e.g. they read a room elsewhere. */
export function badgeNotification(pusher: PusherRow, unread: number): { notification: Record<string, unknown> } {
  return { notification: { counts: { unread }, devices: [device(pusher)] } };
}
