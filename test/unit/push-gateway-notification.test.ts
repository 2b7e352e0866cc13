/**
 * The push gateway bodies (services/push/gateway-notification.ts): tweaks
 * from actions, priority, the device's data, member-event fields and
 * `push.include_content: false`. The integration test (pushers.test.ts)
 * checks whole bodies as a gateway receives them.
 */
import { describe, expect, it } from 'vitest';
import { badgeNotification, eventNotification, gatewayData, priorityOf, tweaksOf } from '../../src/services/push/gateway-notification.js';
import type { PusherRow } from '../../src/storage/pushers.js';

const pusher = (data: Record<string, unknown> = { url: 'https://gw.example/_matrix/push/v1/notify' }): PusherRow => ({
  id: 1,
  user_id: '@bob:example.org',
  device_id: 'DEV',
  kind: 'http',
  app_id: 'org.example.app',
  pushkey: 'key',
  pushkey_ts: 1_700_000_123_456,
  app_display_name: 'App',
  device_display_name: 'Phone',
  profile_tag: '',
  lang: 'en',
  data,
  last_stream_ordering: 0,
  last_success: null,
  failing_since: null,
});

describe('tweaks and priority', () => {
  it('takes set_tweak actions, a missing value meaning true, and ignores the rest', () => {
    expect(tweaksOf(['notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }, { set_tweak: 'highlight', value: false }, 'dont_notify', null, [1]])).toEqual({
      sound: 'default',
      highlight: false,
    });
    expect(tweaksOf(['notify'])).toEqual({});
  });

  it('is high for sound, highlight or an encrypted event; low otherwise', () => {
    expect(priorityOf('m.room.message', {})).toBe('low');
    expect(priorityOf('m.room.message', { highlight: false })).toBe('low');
    expect(priorityOf('m.room.message', { sound: 'default' })).toBe('high');
    expect(priorityOf('m.room.message', { highlight: true })).toBe('high');
    expect(priorityOf('m.room.encrypted', {})).toBe('high');
  });
});

describe('bodies', () => {
  it('gives the gateway the data without url, format and custom keys kept', () => {
    expect(gatewayData(pusher({ url: 'https://x/_matrix/push/v1/notify', format: 'event_id_only', default_payload: { a: 1 } }))).toEqual({
      format: 'event_id_only',
      default_payload: { a: 1 },
    });
  });

  it('adds membership and user_is_target for member events, and leaves content out when told to', () => {
    const ev = { event_id: '$e', room_id: '!r:example.org', type: 'm.room.member', sender: '@alice:example.org', state_key: '@bob:example.org', content: { membership: 'invite' } };
    const body = eventNotification(pusher(), ev, ['notify', { set_tweak: 'sound', value: 'default' }], 2, { roomName: 'Room' }, { includeContent: false });
    expect(body).toEqual({
      notification: {
        event_id: '$e',
        room_id: '!r:example.org',
        type: 'm.room.member',
        sender: '@alice:example.org',
        prio: 'high',
        counts: { unread: 2 },
        membership: 'invite',
        user_is_target: true,
        room_name: 'Room',
        devices: [{ app_id: 'org.example.app', pushkey: 'key', pushkey_ts: 1_700_000_123, data: {}, tweaks: { sound: 'default' } }],
      },
    });
    const other = eventNotification(pusher(), { ...ev, state_key: '@carol:example.org' }, ['notify'], 1, {}, { includeContent: true });
    expect(other.notification).toMatchObject({ user_is_target: false, content: { membership: 'invite' } });
  });

  it('a badge-only notification has counts and the device, no event', () => {
    expect(badgeNotification(pusher(), 0)).toEqual({
      notification: { counts: { unread: 0 }, devices: [{ app_id: 'org.example.app', pushkey: 'key', pushkey_ts: 1_700_000_123, data: {} }] },
    });
  });
});
