import { describe, expect, it } from 'vitest';
import { assertEventFormat, EventFormatError, isValidServerName, isValidUserId, MAX_EVENT_BYTES, serverNameOf, validateEventFormat } from '../../src/core/event-format.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { UnsupportedRoomVersionError } from '../../src/core/room-versions.js';

const HASH_ID = '$' + 'A'.repeat(43);

function v4Event(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'm.room.message',
    room_id: '!room:example.org',
    sender: '@alice:example.org',
    origin_server_ts: 1700000000000,
    depth: 5,
    content: { body: 'hi', msgtype: 'm.text' },
    prev_events: [HASH_ID],
    auth_events: [HASH_ID, '$' + 'B'.repeat(43)],
    hashes: { sha256: 'x'.repeat(43) },
    signatures: { 'example.org': { 'ed25519:a_abcd': 's'.repeat(86) } },
    unsigned: { age: 1 },
    ...extra,
  };
}

function v1Event(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return v4Event({
    event_id: '$abc:example.org',
    prev_events: [['$p:example.org', { sha256: 'x' }]],
    auth_events: [['$a:example.org', { sha256: 'y' }]],
    ...extra,
  });
}

const paths = (event: unknown, v: string): string[] => validateEventFormat(event, v).map((p) => p.path);

describe('validateEventFormat: well-formed events pass', () => {
  it.each(['3', '4', '6', '10', '11'])('v%s event', (v) => {
    expect(validateEventFormat(v4Event(), v)).toEqual([]);
  });
  it.each(['1', '2'])('v%s event with event_id and [id, hashes] pairs', (v) => {
    expect(validateEventFormat(v1Event(), v)).toEqual([]);
  });
  it('v12 event with a hash room id, and a v12 create event without room_id', () => {
    expect(validateEventFormat(v4Event({ room_id: '!' + 'a_-'.repeat(14) + 'b' }), '12')).toEqual([]);
    const create = v4Event({ type: 'm.room.create', state_key: '', content: { room_version: '12' }, prev_events: [], auth_events: [] });
    delete create['room_id'];
    expect(validateEventFormat(create, '12')).toEqual([]);
  });
  it('user ids under the historical grammar, server names with ports and IP literals', () => {
    for (const sender of ['@Alice:example.org', '@:example.org', '@a b!:example.org:8448', '@a:1.2.3.4', '@a:[1234:5678::abcd]:5678']) {
      expect(paths(v4Event({ sender }), '10')).toEqual([]);
    }
  });
});

describe('validateEventFormat: problems', () => {
  it('a non-object', () => {
    for (const bad of [null, [], 'x', 5, undefined]) expect(paths(bad, '10')).toEqual(['']);
  });

  it.each(['type', 'room_id', 'sender', 'origin_server_ts', 'depth', 'content', 'hashes', 'signatures', 'prev_events', 'auth_events'])('missing %s', (key) => {
    const e = v4Event();
    delete e[key];
    expect(validateEventFormat(e, '10')).toContainEqual({ path: key, message: 'required' });
  });

  it('missing event_id in v1/v2 only', () => {
    const e = v1Event();
    delete e['event_id'];
    expect(paths(e, '1')).toEqual(['event_id']);
    expect(paths(v4Event(), '4')).toEqual([]);
  });

  it.each([
    ['type', 5],
    ['state_key', null],
    ['sender', ['@a:b']],
    ['room_id', {}],
    ['origin_server_ts', '1'],
    ['origin_server_ts', 1.5],
    ['depth', -1],
    ['depth', '5'],
    ['content', []],
    ['content', 'x'],
    ['hashes', 'x'],
    ['signatures', []],
    ['unsigned', 'x'],
    ['redacts', 5],
    ['prev_events', {}],
  ] as [string, unknown][])('%s of the wrong type (%j)', (key, value) => {
    expect(paths(v4Event({ [key]: value }), '10')).toContain(key);
  });

  it('hashes without a string sha256, signatures not an object of objects of strings', () => {
    expect(paths(v4Event({ hashes: { sha256: 5 } }), '10')).toEqual(['hashes.sha256']);
    expect(paths(v4Event({ signatures: { 'example.org': { k: 5 } } }), '10')).toEqual(['signatures["example.org"]']);
    expect(paths(v4Event({ signatures: { 'example.org': 'x' } }), '10')).toEqual(['signatures["example.org"]']);
  });

  it('ids of the wrong shape', () => {
    expect(paths(v4Event({ sender: 'alice' }), '10')).toEqual(['sender']);
    expect(paths(v4Event({ sender: '@alice' }), '10')).toEqual(['sender']);
    expect(paths(v4Event({ sender: '@alice:bad_host!' }), '10')).toEqual(['sender']);
    expect(paths(v4Event({ room_id: '#room:example.org' }), '10')).toEqual(['room_id']);
    expect(paths(v4Event({ room_id: '!nohost' }), '10')).toEqual(['room_id']);
    expect(paths(v1Event({ event_id: 'abc:example.org' }), '1')).toEqual(['event_id']);
    expect(paths(v1Event({ event_id: '$abc' }), '2')).toEqual(['event_id']);
  });

  it('v12 room ids are a hash without a server part, and required except on the create event', () => {
    expect(paths(v4Event(), '12')).toEqual(['room_id']);
    expect(paths(v4Event({ room_id: '!' + 'a'.repeat(42) }), '12')).toEqual(['room_id']);
    expect(paths(v4Event({ room_id: '!' + 'a+'.repeat(21) + 'a' }), '12')).toEqual(['room_id']);
    const e = v4Event();
    delete e['room_id'];
    expect(paths(e, '12')).toEqual(['room_id']);
  });

  it('v1/v2 references are [id, hashes] pairs; v3+ references are plain ids', () => {
    expect(paths(v4Event(), '1')).toEqual(['event_id', 'prev_events[0]', 'auth_events[0]', 'auth_events[1]']);
    expect(paths(v1Event(), '3')).toEqual(['prev_events[0]', 'auth_events[0]']);
    expect(paths(v1Event({ prev_events: [['$p:example.org']] }), '1')).toEqual(['prev_events[0]']);
    expect(paths(v1Event({ prev_events: [['$p:example.org', 'x']] }), '1')).toEqual(['prev_events[0][1]']);
    expect(paths(v1Event({ prev_events: [[5, {}]] }), '1')).toEqual(['prev_events[0][0]']);
    expect(paths(v4Event({ auth_events: ['not-an-id'] }), '10')).toEqual(['auth_events[0]']);
  });

  it('at most 20 prev_events and 10 auth_events', () => {
    expect(paths(v4Event({ prev_events: Array(20).fill(HASH_ID) }), '10')).toEqual([]);
    expect(paths(v4Event({ prev_events: Array(21).fill(HASH_ID) }), '10')).toEqual(['prev_events']);
    expect(paths(v4Event({ auth_events: Array(10).fill(HASH_ID) }), '10')).toEqual([]);
    expect(paths(v4Event({ auth_events: Array(11).fill(HASH_ID) }), '10')).toEqual(['auth_events']);
  });

  it('the whole event at most 65536 bytes of canonical JSON, counted in UTF-8 bytes', () => {
    const base = v4Event({ content: { body: '' } });
    const room = MAX_EVENT_BYTES - Buffer.byteLength(canonicalJson(base));
    expect(paths(v4Event({ content: { body: 'a'.repeat(room) } }), '10')).toEqual([]);
    expect(paths(v4Event({ content: { body: 'a'.repeat(room + 1) } }), '10')).toEqual(['']);
    // Two bytes per character: half as many characters overflow.
    expect(paths(v4Event({ content: { body: 'é'.repeat(Math.ceil((room + 1) / 2)) } }), '10')).toEqual(['']);
  });

  it.each(['sender', 'room_id', 'state_key', 'type', 'event_id'])('%s at most 255 bytes, counted in UTF-8 bytes', (key) => {
    const make = (filler: string): Record<string, unknown> => {
      const value = key === 'sender' ? `@${filler}:example.org` : key === 'room_id' ? `!${filler}:example.org` : key === 'event_id' ? `$${filler}:example.org` : filler;
      return v1Event({ [key]: value });
    };
    const overhead = key === 'state_key' || key === 'type' ? 0 : 1 + ':example.org'.length;
    const fits = 'a'.repeat(255 - overhead);
    expect(paths(make(fits), '1')).toEqual([]);
    expect(paths(make(fits + 'a'), '1')).toEqual([key]);
    // 128 two-byte characters: 128 characters but 256 bytes.
    expect(paths(make('é'.repeat(Math.floor((255 - overhead) / 2) + 1)), '1')).toEqual([key]);
  });

  it('a value that is not canonical JSON, with its path', () => {
    expect(validateEventFormat(v4Event({ content: { n: 1.5 } }), '10')).toEqual([{ path: 'content.n', message: 'non-integer number 1.5 is not allowed' }]);
    expect(paths(v4Event({ depth: 2 ** 53 }), '10')).toContain('depth');
  });

  it('lists every problem at once', () => {
    expect(paths({ type: 5 }, '10').length).toBeGreaterThan(8);
  });

  it('throws for an unknown room version', () => {
    expect(() => validateEventFormat(v4Event(), '42')).toThrow(UnsupportedRoomVersionError);
  });
});

describe('assertEventFormat', () => {
  it('passes a good event and throws EventFormatError with the problems otherwise', () => {
    expect(() => assertEventFormat(v4Event(), '10')).not.toThrow();
    let caught: unknown;
    try {
      assertEventFormat(v4Event({ depth: 'x', sender: 'y' }), '10');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EventFormatError);
    expect((caught as EventFormatError).problems.map((p) => p.path).sort()).toEqual(['depth', 'sender']);
    expect((caught as Error).message).toContain('depth');
  });
});

describe('id helpers', () => {
  it('serverNameOf', () => {
    expect(serverNameOf('@a:example.org')).toBe('example.org');
    expect(serverNameOf('@a:example.org:8448')).toBe('example.org:8448');
    expect(serverNameOf('$x:[::1]')).toBe('[::1]');
    expect(serverNameOf('@a')).toBeUndefined();
    expect(serverNameOf(':example.org')).toBeUndefined();
    expect(serverNameOf('@a:exa mple.org')).toBeUndefined();
  });
  it('isValidServerName and isValidUserId', () => {
    expect(isValidServerName('matrix.org')).toBe(true);
    expect(isValidServerName('[1234:5678::abcd]:5678')).toBe(true);
    expect(isValidServerName('matrix.org:123456')).toBe(false);
    expect(isValidServerName('')).toBe(false);
    expect(isValidUserId('@a:matrix.org')).toBe(true);
    expect(isValidUserId('@a:matrix.org/x')).toBe(false);
    expect(isValidUserId(`@${'a'.repeat(250)}:b.org`)).toBe(false);
    expect(isValidUserId(5)).toBe(false);
  });
});
