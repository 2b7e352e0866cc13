/** The rules of the remote device-list cache: when an m.device_list_update applies, and what a /user/devices answer must hold. */
import { describe, expect, it } from 'vitest';
import { MAX_CACHED_DEVICES, decideDeviceListUpdate, parseDeviceListAnswer } from '../../src/services/e2ee/remote-device-cache.js';

const bob = '@bob:b.example';
const keys = (deviceId: string, userId = bob) => ({ user_id: userId, device_id: deviceId, algorithms: [], keys: { [`ed25519:${deviceId}`]: 'k' } });
const master = { user_id: bob, usage: ['master'], keys: { 'ed25519:M': 'M' } };

describe('decideDeviceListUpdate', () => {
  const at = { stream_id: 10, stale: false };
  it('applies an update whose prev_ids are all the position held', () => {
    expect(decideDeviceListUpdate(at, 11, [10])).toBe('apply');
    expect(decideDeviceListUpdate(at, 30, [10, 10])).toBe('apply');
  });
  it('ignores an update already seen', () => {
    expect(decideDeviceListUpdate(at, 10, [9])).toBe('ignore');
    expect(decideDeviceListUpdate(at, 3, [])).toBe('ignore');
  });
  it('resyncs at a gap, without prev_id, when stale, or when malformed', () => {
    expect(decideDeviceListUpdate(at, 12, [11])).toBe('resync');
    expect(decideDeviceListUpdate(at, 12, [10, 11])).toBe('resync');
    expect(decideDeviceListUpdate(at, 12, [])).toBe('resync');
    expect(decideDeviceListUpdate(at, 12, undefined)).toBe('resync');
    expect(decideDeviceListUpdate(at, 12, ['10'])).toBe('resync');
    expect(decideDeviceListUpdate({ stream_id: 10, stale: true }, 11, [10])).toBe('resync');
    expect(decideDeviceListUpdate(at, '11', [10])).toBe('resync');
    expect(decideDeviceListUpdate(at, -1, [10])).toBe('resync');
    expect(decideDeviceListUpdate(at, 1.5, [10])).toBe('resync');
  });
});

describe('parseDeviceListAnswer', () => {
  it('takes the devices, names and cross-signing keys of the user asked about', () => {
    const list = parseDeviceListAnswer(
      { user_id: bob, stream_id: 7, devices: [{ device_id: 'A', keys: keys('A'), device_display_name: 'phone' }, { device_id: 'B' }], master_key: master },
      bob,
    );
    expect(list).toEqual({
      userId: bob,
      streamId: 7,
      devices: [
        { deviceId: 'A', displayName: 'phone', keys: keys('A') },
        { deviceId: 'B', displayName: null, keys: null },
      ],
      masterKey: master,
    });
  });
  it('leaves out devices whose keys name another user or device, duplicates, and bad ids', () => {
    const list = parseDeviceListAnswer(
      {
        user_id: bob,
        stream_id: 7,
        devices: [
          { device_id: 'A', keys: keys('B') },
          { device_id: 'C', keys: keys('C', '@eve:b.example') },
          { device_id: 'D' },
          { device_id: 'D', keys: keys('D') },
          { device_id: '' },
          { device_id: 5 },
        ],
        master_key: { ...master, user_id: '@eve:b.example' },
        self_signing_key: 'nope',
      },
      bob,
    );
    expect(list).toEqual({ userId: bob, streamId: 7, devices: [{ deviceId: 'D', displayName: null, keys: null }] });
  });
  it('refuses an answer for another user, without a stream position, or too large', () => {
    expect(parseDeviceListAnswer({ user_id: '@eve:b.example', stream_id: 1, devices: [] }, bob)).toBeUndefined();
    expect(parseDeviceListAnswer({ user_id: bob, devices: [] }, bob)).toBeUndefined();
    expect(parseDeviceListAnswer({ user_id: bob, stream_id: 1 }, bob)).toBeUndefined();
    expect(parseDeviceListAnswer([], bob)).toBeUndefined();
    const many = Array.from({ length: MAX_CACHED_DEVICES + 1 }, (_, i) => ({ device_id: `D${i}` }));
    expect(parseDeviceListAnswer({ user_id: bob, stream_id: 1, devices: many }, bob)).toBeUndefined();
  });
  it('leaves out keys holding U+0000 (they cannot be stored)', () => {
    const list = parseDeviceListAnswer({ user_id: bob, stream_id: 1, devices: [{ device_id: 'A', keys: { ...keys('A'), x: 'a\u0000b' } }] }, bob);
    expect(list?.devices).toEqual([]);
  });
});
