import { describe, it } from 'vitest';
import { checkAuth } from '../../src/core/auth/index.js';
import type { JsonObject } from '../../src/core/pdu.js';
import { ALICE, ALL_VERSIONS, BOB, expectAllowed, expectDenied } from './fixtures/auth.js';

const V1_TO_10 = ALL_VERSIONS.filter((v) => Number(v) <= 10);
const V1_TO_11 = ALL_VERSIONS.filter((v) => Number(v) <= 11);

function createEvent(version: string, over: JsonObject = {}, content: JsonObject = {}): JsonObject {
  const c: JsonObject = { room_version: version, ...content };
  if (Number(version) <= 10 && !Object.hasOwn(content, 'creator')) c['creator'] = ALICE;
  const e: JsonObject = {
    event_id: '$create:example.org',
    room_id: '!r:example.org',
    sender: ALICE,
    type: 'm.room.create',
    state_key: '',
    content: c,
    prev_events: [],
    auth_events: [],
    depth: 1,
    origin_server_ts: 1,
    ...over,
  };
  if (Number(version) >= 12 && !Object.hasOwn(over, 'room_id')) delete e['room_id'];
  return e;
}

describe('m.room.create (rule 1)', () => {
  it.each(ALL_VERSIONS)('v%s: a well-formed create event is allowed', (v) => {
    expectAllowed(checkAuth(v, createEvent(v), []));
  });

  it.each(ALL_VERSIONS)('v%s: a create event with prev_events is rejected', (v) => {
    expectDenied(checkAuth(v, createEvent(v, { prev_events: ['$x:example.org'] }), []), /^m\.room\.create: .*prev_events/);
  });

  it.each(V1_TO_11)("v%s: room_id's server must be the sender's", (v) => {
    expectDenied(checkAuth(v, createEvent(v, { room_id: '!r:elsewhere.org' }), []), /^m\.room\.create: the room_id's server does not match the sender's server/);
  });

  it('v12: the room_id has no server part, so any sender is fine', () => {
    expectAllowed(checkAuth('12', createEvent('12', { sender: '@x:anywhere.example' }), []));
  });

  it('v12: a create event with a room_id is rejected; v11 requires one', () => {
    expectDenied(checkAuth('12', createEvent('12', { room_id: '!r:example.org' }), []), /^m\.room\.create: event has a room_id/);
    expectDenied(checkAuth('11', createEvent('11', { room_id: undefined as unknown as string }), []), /malformed event: `room_id`/);
  });

  it.each(ALL_VERSIONS)('v%s: an unknown content.room_version is rejected, a known one allowed', (v) => {
    expectDenied(checkAuth(v, createEvent(v, {}, { room_version: '999' }), []), /^m\.room\.create: content\.room_version "999" is not a recognised/);
    expectDenied(checkAuth(v, createEvent(v, {}, { room_version: 5 }), []), /^m\.room\.create: content\.room_version 5 is not a recognised/);
    expectAllowed(checkAuth(v, createEvent(v, {}, { room_version: '9' }), []));
  });

  it('an absent room_version is fine (defaults to "1")', () => {
    const e = createEvent('1');
    delete (e['content'] as JsonObject)['room_version'];
    expectAllowed(checkAuth('1', e, []));
  });

  it.each(V1_TO_10)('v%s: content without creator is rejected', (v) => {
    const e = createEvent(v);
    delete (e['content'] as JsonObject)['creator'];
    expectDenied(checkAuth(v, e, []), /^m\.room\.create: content has no creator/);
  });

  it.each(['11', '12'])('v%s: content without creator is allowed (the sender is the creator)', (v) => {
    expectAllowed(checkAuth(v, createEvent(v), []));
  });

  it('v12: additional_creators must be an array of valid user IDs', () => {
    expectAllowed(checkAuth('12', createEvent('12', {}, { additional_creators: [BOB, '@carol:other.example'] }), []));
    expectAllowed(checkAuth('12', createEvent('12', {}, { additional_creators: [] }), []));
    expectDenied(checkAuth('12', createEvent('12', {}, { additional_creators: ['not-a-user'] }), []), /^m\.room\.create: additional_creators is not an array of valid user IDs/);
    expectDenied(checkAuth('12', createEvent('12', {}, { additional_creators: BOB }), []), /^m\.room\.create: additional_creators/);
    expectDenied(checkAuth('12', createEvent('12', {}, { additional_creators: [BOB, 7] }), []), /^m\.room\.create: additional_creators/);
  });

  it('v11: additional_creators is not validated (it means nothing before v12)', () => {
    expectAllowed(checkAuth('11', createEvent('11', {}, { additional_creators: ['not-a-user'] }), []));
  });
});

describe('checkAuth input', () => {
  it('rejects an unknown room version', () => {
    expectDenied(checkAuth('13', createEvent('12'), []), /^room version: "13" is not a known room version/);
  });

  it('rejects malformed events instead of throwing', () => {
    expectDenied(checkAuth('10', { type: 'm.room.create' }, []), /^malformed event: `sender` is not a string/);
    expectDenied(checkAuth('10', createEvent('10', { content: [] as unknown as JsonObject }), []), /^malformed event: `content` is not an object/);
    expectDenied(checkAuth('10', createEvent('10', { state_key: 5 }), []), /^malformed event: `state_key` is not a string/);
    expectDenied(checkAuth('10', createEvent('10', { prev_events: null }), []), /^malformed event: `prev_events` is not an array/);
  });
});
