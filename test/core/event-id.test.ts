import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { canonicalJson, CanonicalJsonError } from '../../src/core/canonical-json.js';
import { EventIdError, eventId, newV1EventId, roomIdFromCreateEvent } from '../../src/core/event-id.js';
import { checkContentHash, contentHash, referenceHash } from '../../src/core/hashes.js';
import { UnsupportedRoomVersionError } from '../../src/core/room-versions.js';

// Expected values below were computed independently with the spec's Python
// canonical_json (json.dumps, sort_keys, ensure_ascii=False), hashlib and
// base64, from the redacted forms written out by hand.
const MEMBER = {
  auth_events: ['$aaaa', '$bbbb'],
  prev_events: ['$cccc'],
  content: {
    membership: 'join',
    displayname: 'Alice é😀',
    avatar_url: 'mxc://example.org/abc',
    join_authorised_via_users_server: '@bob:other.example',
  },
  depth: 7,
  origin: 'example.org',
  origin_server_ts: 1700000000123,
  room_id: '!room:example.org',
  sender: '@alice:example.org',
  state_key: '@alice:example.org',
  type: 'm.room.member',
  hashes: { sha256: 'uoxnDTQtOli8wj1DzVO+zvgdh6qBgTKsqeKitgwZ62Y' },
  signatures: { 'example.org': { 'ed25519:a_test': 'sig' } },
  unsigned: { age: 5 },
};

const CREATE_V12 = {
  auth_events: [],
  prev_events: [],
  content: { room_version: '12', additional_creators: ['@bob:other.example'], 'm.federate': true },
  depth: 1,
  origin_server_ts: 1700000000000,
  sender: '@alice:example.org',
  state_key: '',
  type: 'm.room.create',
  hashes: { sha256: 'ZdahBXZepxR6IkRuqOWruaCh/735OXIhhnmwhK+w1dM' },
  signatures: {},
  unsigned: { age_ts: 1 },
};

describe('contentHash', () => {
  it('matches the independently computed hash', () => {
    expect(contentHash(MEMBER)).toBe('uoxnDTQtOli8wj1DzVO+zvgdh6qBgTKsqeKitgwZ62Y');
    expect(contentHash(CREATE_V12)).toBe('ZdahBXZepxR6IkRuqOWruaCh/735OXIhhnmwhK+w1dM');
  });

  it('is the spec’s hash of the minimal signing vector', () => {
    expect(
      contentHash({
        room_id: '!x:domain',
        sender: '@a:domain',
        origin: 'domain',
        origin_server_ts: 1000000,
        signatures: {},
        hashes: {},
        type: 'X',
        content: {},
        prev_events: [],
        auth_events: [],
        depth: 3,
        unsigned: { age_ts: 1000000 },
      }),
    ).toBe('5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos');
  });

  it('ignores unsigned, signatures and hashes, and nothing else', () => {
    const h = contentHash(MEMBER);
    expect(contentHash({ ...MEMBER, unsigned: { age: 99 }, signatures: {}, hashes: { sha256: 'x' } })).toBe(h);
    const { unsigned: _u, signatures: _s, hashes: _h, ...bare } = MEMBER;
    expect(contentHash(bare)).toBe(h);
    expect(contentHash({ ...MEMBER, content: { ...MEMBER.content, displayname: 'B' } })).not.toBe(h);
    expect(contentHash({ ...MEMBER, age_ts: 1 })).not.toBe(h);
  });

  it('is unpadded base64 of SHA-256 over the canonical JSON', () => {
    const { unsigned: _u, signatures: _s, hashes: _h, ...bare } = MEMBER;
    const expected = createHash('sha256').update(canonicalJson(bare), 'utf8').digest('base64').replace(/=+$/, '');
    expect(contentHash(MEMBER)).toBe(expected);
  });

  it('throws for an event that is not canonical JSON', () => {
    expect(() => contentHash({ ...MEMBER, depth: 1.5 })).toThrow(CanonicalJsonError);
  });
});

describe('checkContentHash', () => {
  it('accepts a matching hash, padded or not', () => {
    expect(checkContentHash(MEMBER)).toBe(true);
    expect(checkContentHash({ ...MEMBER, hashes: { sha256: MEMBER.hashes.sha256 + '=' } })).toBe(true);
  });
  it.each([
    ['content changed', { ...MEMBER, content: { membership: 'leave' } }],
    ['no hashes', { ...MEMBER, hashes: undefined }],
    ['hashes not an object', { ...MEMBER, hashes: 'x' }],
    ['sha256 missing', { ...MEMBER, hashes: { sha512: 'x' } }],
    ['sha256 not a string', { ...MEMBER, hashes: { sha256: 5 } }],
    ['sha256 bad base64', { ...MEMBER, hashes: { sha256: '!!!!' } }],
    ['sha256 too short', { ...MEMBER, hashes: { sha256: MEMBER.hashes.sha256.slice(0, 40) } }],
    ['sha256 in URL-safe alphabet', { ...MEMBER, hashes: { sha256: MEMBER.hashes.sha256.replace('+', '-') } }],
    ['event not canonical JSON', { ...MEMBER, depth: 2 ** 60 }],
  ])('is false, never a throw: %s', (_name, event) => {
    expect(checkContentHash(event)).toBe(false);
  });
});

describe('referenceHash and eventId', () => {
  it('v3: $ + standard base64 of the reference hash of the redacted event', () => {
    expect(eventId(MEMBER, '3')).toBe('$sF+z+DH1+xAt1Cjm2z9vrIsIu34nTNtufslnEPNVyFQ');
  });

  it.each(['4', '5', '6', '7', '8'])('v%s: URL-safe base64', (v) => {
    expect(eventId(MEMBER, v)).toBe('$sF-z-DH1-xAt1Cjm2z9vrIsIu34nTNtufslnEPNVyFQ');
  });

  it.each(['9', '10'])('v%s: the id covers join_authorised_via_users_server (kept by redaction from v9)', (v) => {
    expect(eventId(MEMBER, v)).toBe('$T-ldHpqAsCAGQU-a6avdTi4zqb4fYFVCczhBSGYKRsQ');
  });

  it.each(['11', '12'])('v%s: the id no longer covers origin', (v) => {
    expect(eventId(MEMBER, v)).toBe('$cFuTB3Ro3eacg1nYdQH2aFNpYeWAvFLzfl0WX2KC1WI');
  });

  it('referenceHash gives the raw 32 bytes', () => {
    const h = referenceHash(MEMBER, '4');
    expect(h).toHaveLength(32);
    expect(Buffer.from(h).toString('base64url')).toBe('sF-z-DH1-xAt1Cjm2z9vrIsIu34nTNtufslnEPNVyFQ');
  });

  it('does not change with signatures, unsigned, age_ts or redactable content', () => {
    const id = eventId(MEMBER, '10');
    expect(eventId({ ...MEMBER, signatures: { x: { 'ed25519:y': 'z' } }, unsigned: {}, age_ts: 5 }, '10')).toBe(id);
    expect(eventId({ ...MEMBER, content: { ...MEMBER.content, displayname: 'Someone else' } }, '10')).toBe(id);
  });

  it('changes with essential fields and with the content hash', () => {
    const id = eventId(MEMBER, '10');
    expect(eventId({ ...MEMBER, depth: 8 }, '10')).not.toBe(id);
    expect(eventId({ ...MEMBER, hashes: { sha256: 'other' } }, '10')).not.toBe(id);
    expect(eventId({ ...MEMBER, content: { ...MEMBER.content, membership: 'leave' } }, '10')).not.toBe(id);
  });

  it('v1/v2: the event’s own event_id', () => {
    expect(eventId({ ...MEMBER, event_id: '$abc:example.org' }, '1')).toBe('$abc:example.org');
    expect(eventId({ ...MEMBER, event_id: '$abc:example.org' }, '2')).toBe('$abc:example.org');
    expect(() => eventId(MEMBER, '1')).toThrow(EventIdError);
    expect(() => eventId({ ...MEMBER, event_id: 5 }, '2')).toThrow(EventIdError);
  });

  it('throws for unknown room versions and non-canonical events', () => {
    expect(() => eventId(MEMBER, '13')).toThrow(UnsupportedRoomVersionError);
    expect(() => eventId(MEMBER, '')).toThrow(UnsupportedRoomVersionError);
    expect(() => eventId({ ...MEMBER, depth: 0.5 }, '10')).toThrow(CanonicalJsonError);
  });

  it('newV1EventId makes $<18 alphanumerics>:<server>, different each time', () => {
    const a = newV1EventId('example.org:8448');
    expect(a).toMatch(/^\$[A-Za-z0-9]{18}:example\.org:8448$/);
    expect(newV1EventId('example.org:8448')).not.toBe(a);
  });
});

describe('roomIdFromCreateEvent (v12)', () => {
  it('is ! + URL-safe base64 of the create event’s reference hash, with no server part', () => {
    expect(roomIdFromCreateEvent(CREATE_V12)).toBe('!GlqNfxxsGWC5elJwWLZPuunN7HcpDq8O_X0rDLwVyjU');
    expect(roomIdFromCreateEvent(CREATE_V12, '12')).toBe('!GlqNfxxsGWC5elJwWLZPuunN7HcpDq8O_X0rDLwVyjU');
  });

  it('is the create event’s event id with ! for $', () => {
    expect(roomIdFromCreateEvent(CREATE_V12)).toBe('!' + eventId(CREATE_V12, '12').slice(1));
  });

  it('keeps the whole create content in the hash (v11+ redaction)', () => {
    const other = { ...CREATE_V12, content: { ...CREATE_V12.content, 'm.federate': false } };
    expect(roomIdFromCreateEvent(other)).not.toBe(roomIdFromCreateEvent(CREATE_V12));
  });

  it('refuses versions whose room ids are not derived, unknown versions, and non-create events', () => {
    expect(() => roomIdFromCreateEvent({ ...CREATE_V12, content: { room_version: '11' } })).toThrow(EventIdError);
    expect(() => roomIdFromCreateEvent({ ...CREATE_V12, content: {} })).toThrow(EventIdError);
    expect(() => roomIdFromCreateEvent({ ...CREATE_V12, content: { room_version: 12 } })).toThrow(EventIdError);
    expect(() => roomIdFromCreateEvent({ ...CREATE_V12, content: { room_version: 'org.example.custom' } })).toThrow(UnsupportedRoomVersionError);
    expect(() => roomIdFromCreateEvent({ ...CREATE_V12, type: 'm.room.member' })).toThrow(EventIdError);
  });
});
