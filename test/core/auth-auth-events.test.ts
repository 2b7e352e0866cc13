import { describe, expect, it } from 'vitest';
import { authEventSelection, checkAuth, checkAuthAgainstState } from '../../src/core/auth/index.js';
import { stateMapKey, type PDU } from '../../src/core/pdu.js';
import { requireRoomVersion } from '../../src/core/room-versions.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, DAVE, TestRoom, addMember, expectAllowed, expectDenied, standardRoom } from './fixtures/auth.js';

const V1_TO_11 = ALL_VERSIONS.filter((v) => Number(v) <= 11);

function message(room: TestRoom, sender = BOB): PDU {
  return room.event({ type: 'm.room.message', sender, content: { body: 'hi' } });
}

describe('auth events list (v1-v11 rule 2, v12 rule 3)', () => {
  it.each(ALL_VERSIONS)('v%s: the selected auth events are accepted', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = message(room);
    expectAllowed(checkAuth(v, e, room.authEventsFor(e), { createEvent: room.create }));
  });

  it.each(ALL_VERSIONS)('v%s: duplicate (type, state_key) entries are rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = message(room);
    const auth = room.authEventsFor(e);
    const pl = room.state.get(stateMapKey('m.room.power_levels', ''))!;
    const pl2 = { ...pl, event_id: '$pl2:example.org', content: { ...pl.content } };
    e.auth_events.push('$pl2:example.org');
    expectDenied(checkAuth(v, e, [...auth, pl2], { createEvent: room.create }), /^auth events: duplicate entry for \(m\.room\.power_levels, ""\)/);
  });

  it.each(ALL_VERSIONS)('v%s: an entry the selection does not allow is rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = message(room);
    // The join rules are selected only for membership events.
    const jr = room.state.get(stateMapKey('m.room.join_rules', ''))!;
    e.auth_events.push(jr.event_id!);
    expectDenied(
      checkAuth(v, e, [...room.authEventsFor(e), jr], { createEvent: room.create }),
      /^auth events: .*m\.room\.join_rules.* is not one the auth events selection allows/,
    );
  });

  it('v12: citing the m.room.create event is rejected; v11 requires it', () => {
    const room = addMember(standardRoom('12'), BOB);
    const e = message(room);
    e.auth_events.push(room.create.event_id!);
    expectDenied(
      checkAuth('12', e, [...room.authEventsFor(e), room.create], { createEvent: room.create }),
      /^auth events: .*m\.room\.create.* is not one the auth events selection allows/,
    );
  });

  it.each(V1_TO_11)('v%s: auth events without an m.room.create are rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = message(room);
    const auth = room.authEventsFor(e).filter((a) => a.type !== 'm.room.create');
    expectDenied(checkAuth(v, e, auth), /^auth events: there is no m\.room\.create event/);
    expectDenied(
      checkAuthAgainstState(requireRoomVersion(v), e, () => undefined),
      /^auth events: there is no m\.room\.create event/,
    );
  });

  it.each(ALL_VERSIONS)('v%s: an auth event that was itself rejected is rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = message(room);
    const bobJoin = room.state.get(stateMapKey('m.room.member', BOB))!;
    const isRejected = (x: PDU): boolean => x.event_id === bobJoin.event_id;
    expectDenied(checkAuth(v, e, room.authEventsFor(e), { createEvent: room.create, isRejected }), /^auth events: .*m\.room\.member.* was itself rejected/);
    expectAllowed(checkAuth(v, e, room.authEventsFor(e), { createEvent: room.create, isRejected: () => false }));
  });

  it.each(ALL_VERSIONS)('v%s: an auth event from another room is rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = message(room);
    const auth = room.authEventsFor(e).map((a) => (a.sender === BOB && a.type === 'm.room.member' ? { ...a, room_id: '!other:example.org' } : a));
    expectDenied(checkAuth(v, e, auth, { createEvent: room.create }), /^auth events: .* belongs to another room \(!other:example\.org\)/);
  });

  it.each(ALL_VERSIONS)('v%s: an auth event the event does not cite is rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = message(room);
    const auth = room.authEventsFor(e);
    e.auth_events = e.auth_events.filter((id) => id !== auth[auth.length - 1]!.event_id);
    expectDenied(checkAuth(v, e, auth, { createEvent: room.create }), /^auth events: \S+ is not cited in the event's auth_events/);
  });

  it('v1/v2: auth_events as [id, hashes] pairs are understood', () => {
    const room = addMember(standardRoom('1'), BOB);
    const e = message(room);
    e.auth_events = e.auth_events.map((id) => [id as string, { sha256: 'x' }]);
    e.prev_events = e.prev_events.map((id) => [id as string, { sha256: 'x' }]);
    expectAllowed(checkAuth('1', e, room.authEventsFor(e)));
  });

  it.each(ALL_VERSIONS)('v%s: a non-state auth event is rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = message(room);
    const other = message(room, ALICE);
    e.auth_events.push(other.event_id!);
    expectDenied(checkAuth(v, e, [...room.authEventsFor(e), other], { createEvent: room.create }), /^auth events: .* is not a state event/);
  });
});

describe('v12 rule 2: room_id names an accepted create event', () => {
  it('the create event the room id names is accepted', () => {
    const room = addMember(standardRoom('12'), BOB);
    expectAllowed(room.check(message(room)));
  });

  it('a create event whose id is not the room id is rejected', () => {
    const room = addMember(standardRoom('12'), BOB);
    const other = { ...room.create, event_id: '$SomethingElse' };
    expectDenied(checkAuth('12', message(room), room.authEventsFor(message(room)), { createEvent: other }), /^room_id: not the id of the m\.room\.create event/);
    const e = message(room);
    expectDenied(
      checkAuthAgainstState(room.rv, e, (t, k) => (t === 'm.room.create' ? other : room.state.get(stateMapKey(t, k)))),
      /^room_id: not the id of the m\.room\.create event/,
    );
  });

  it('a rejected create event, or none at all, is rejected', () => {
    const room = addMember(standardRoom('12'), BOB);
    const e = message(room);
    expectDenied(
      checkAuth('12', e, room.authEventsFor(e), { createEvent: room.create, isRejected: (x) => x.type === 'm.room.create' }),
      /^room_id: the m\.room\.create event was rejected/,
    );
    expectDenied(checkAuth('12', e, room.authEventsFor(e)), /^room_id: the room's m\.room\.create event was not supplied/);
    expectDenied(
      checkAuthAgainstState(room.rv, e, (t, k) => (t === 'm.room.create' ? undefined : room.state.get(stateMapKey(t, k)))),
      /^room_id: the room's m\.room\.create event is not known/,
    );
  });
});

describe('m.federate (v1-v11 rule 3, v12 rule 4)', () => {
  it.each(ALL_VERSIONS)('v%s: a non-federating room rejects senders from other servers', (v) => {
    const room = standardRoom(v, { joinRule: 'public', createContent: { 'm.federate': false } });
    expectDenied(room.check(room.member(DAVE, DAVE, 'join')), /^m\.federate: the room does not federate/);
    expectAllowed(room.check(room.member(CAROL, CAROL, 'join')));
  });

  it.each(ALL_VERSIONS)('v%s: m.federate true (or absent) lets other servers join', (v) => {
    const room = standardRoom(v, { joinRule: 'public', createContent: { 'm.federate': true } });
    expectAllowed(room.check(room.member(DAVE, DAVE, 'join')));
    const room2 = standardRoom(v, { joinRule: 'public' });
    expectAllowed(room2.check(room2.member(DAVE, DAVE, 'join')));
  });
});

describe('authEventSelection', () => {
  it('v1-v11 select the create event; v12 does not', () => {
    const room11 = standardRoom('11');
    expect(authEventSelection(room11.rv, message(room11))).toEqual([
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
      ['m.room.member', BOB],
    ]);
    const room12 = standardRoom('12');
    expect(authEventSelection(room12.rv, message(room12))).toEqual([
      ['m.room.power_levels', ''],
      ['m.room.member', BOB],
    ]);
  });

  it('the create event selects nothing', () => {
    const room = standardRoom('10');
    expect(authEventSelection(room.rv, room.create)).toEqual([]);
  });

  it('membership events add target, join rules, third-party invite and (v8+) the authorising user', () => {
    const room = standardRoom('10');
    const join = room.member(BOB, BOB, 'join', { join_authorised_via_users_server: ALICE });
    expect(authEventSelection(room.rv, join)).toEqual([
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
      ['m.room.member', BOB],
      ['m.room.join_rules', ''],
      ['m.room.member', ALICE],
    ]);
    const room7 = standardRoom('7');
    expect(authEventSelection(room7.rv, room7.member(BOB, BOB, 'join', { join_authorised_via_users_server: ALICE }))).toEqual([
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
      ['m.room.member', BOB],
      ['m.room.join_rules', ''],
    ]);
    const invite = room.member(ALICE, BOB, 'invite', {
      third_party_invite: { display_name: 'b', signed: { mxid: BOB, token: 'tok', signatures: {} } },
    });
    expect(authEventSelection(room.rv, invite)).toEqual([
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
      ['m.room.member', ALICE],
      ['m.room.member', BOB],
      ['m.room.join_rules', ''],
      ['m.room.third_party_invite', 'tok'],
    ]);
    const kick = room.member(ALICE, BOB, 'leave');
    expect(authEventSelection(room.rv, kick)).toEqual([
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
      ['m.room.member', ALICE],
      ['m.room.member', BOB],
    ]);
  });
});
