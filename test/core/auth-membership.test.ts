import { describe, expect, it } from 'vitest';
import { checkAuth } from '../../src/core/auth/index.js';
import { eventId } from '../../src/core/event-id.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, DAVE, EVE, TestRoom, addMember, expectAllowed, expectDenied, standardRoom } from './fixtures/auth.js';

const from = (n: number): string[] => ALL_VERSIONS.filter((v) => Number(v) >= n);
const upTo = (n: number): string[] => ALL_VERSIONS.filter((v) => Number(v) <= n);

describe('m.room.member: shape', () => {
  it.each(ALL_VERSIONS)('v%s: no membership in content is rejected', (v) => {
    const room = standardRoom(v, { joinRule: 'public' });
    expectDenied(room.check(room.event({ type: 'm.room.member', sender: BOB, state_key: BOB, content: {} })), /^m\.room\.member: content has no string `membership`/);
  });

  it.each(ALL_VERSIONS)('v%s: no state_key is rejected', (v) => {
    const room = standardRoom(v, { joinRule: 'public' });
    const e = room.event({ type: 'm.room.member', sender: BOB, content: { membership: 'join' } });
    expectDenied(checkAuth(v, e, room.authEventsFor(e), { createEvent: room.create }), /^m\.room\.member: event has no state_key/);
  });

  it.each(ALL_VERSIONS)('v%s: an unknown membership is rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    expectDenied(room.check(room.member(BOB, BOB, 'wander')), /^m\.room\.member: unknown membership "wander"/);
  });
});

describe('m.room.member join', () => {
  it.each(upTo(10))("v%s: the creator's first join right after the create is allowed (creator from content.creator)", (v) => {
    const room = new TestRoom(v, ALICE, { creator: BOB });
    expectAllowed(room.check(room.member(BOB, BOB, 'join')));
    // ALICE sent the create event but is not its `creator`.
    expectDenied(room.check(room.member(ALICE, ALICE, 'join')), /^m\.room\.member join: join rule is invite and the sender is not invited/);
  });

  it.each(from(11))("v%s: the creator's first join is allowed for the create event's sender, not content.creator", (v) => {
    const room = new TestRoom(v, ALICE, { creator: BOB });
    expectAllowed(room.check(room.member(ALICE, ALICE, 'join')));
    expectDenied(room.check(room.member(BOB, BOB, 'join')), /^m\.room\.member join: join rule is invite and the sender is not invited/);
  });

  it('v12: additional creators do not get the creator-join rule', () => {
    const room = new TestRoom('12', ALICE, { additional_creators: [BOB] });
    expectDenied(room.check(room.member(BOB, BOB, 'join')), /^m\.room\.member join: join rule is invite and the sender is not invited/);
  });

  it.each(ALL_VERSIONS)('v%s: the creator-join rule needs the create event to be the only prev event', (v) => {
    const room = new TestRoom(v);
    const e = room.member(ALICE, ALICE, 'join');
    e.prev_events = [room.create.event_id!, '$other:example.org'];
    expectDenied(room.check(e), /^m\.room\.member join: join rule is invite and the sender is not invited/);
  });

  it.each(ALL_VERSIONS)('v%s: joining on behalf of someone else is rejected', (v) => {
    const room = standardRoom(v, { joinRule: 'public' });
    expectDenied(room.check(room.member(ALICE, BOB, 'join')), /^m\.room\.member join: sender does not match state_key/);
  });

  it.each(ALL_VERSIONS)('v%s: a banned sender cannot join a public room', (v) => {
    const room = standardRoom(v, { joinRule: 'public' });
    room.apply(room.member(ALICE, BOB, 'ban'));
    expectDenied(room.check(room.member(BOB, BOB, 'join')), /^m\.room\.member join: sender is banned/);
    expectAllowed(room.check(room.member(CAROL, CAROL, 'join')));
  });

  it.each(ALL_VERSIONS)('v%s: join rule invite lets the invited and the joined join, no one else', (v) => {
    const room = standardRoom(v, { joinRule: 'invite' });
    expectDenied(room.check(room.member(BOB, BOB, 'join')), /^m\.room\.member join: join rule is invite and the sender is not invited/);
    room.apply(room.member(ALICE, BOB, 'invite'));
    expectAllowed(room.check(room.member(BOB, BOB, 'join')));
    room.apply(room.member(BOB, BOB, 'join'));
    expectAllowed(room.check(room.member(BOB, BOB, 'join', { displayname: 'Bob' })));
  });

  it.each(ALL_VERSIONS)('v%s: a room without join rules behaves as invite-only', (v) => {
    const room = new TestRoom(v);
    room.apply(room.member(ALICE, ALICE, 'join'));
    expectDenied(room.check(room.member(BOB, BOB, 'join')), /^m\.room\.member join: join rule is invite/);
    room.apply(room.member(ALICE, BOB, 'invite'));
    expectAllowed(room.check(room.member(BOB, BOB, 'join')));
  });

  it.each(ALL_VERSIONS)('v%s: join rule public lets anyone join', (v) => {
    const room = standardRoom(v, { joinRule: 'public' });
    expectAllowed(room.check(room.member(DAVE, DAVE, 'join')));
  });

  it.each(ALL_VERSIONS)('v%s: an unknown join rule (private) lets no one join', (v) => {
    const room = standardRoom(v, { joinRule: 'private' });
    expectDenied(room.check(room.member(BOB, BOB, 'join')), /^m\.room\.member join: join rule "private" does not let the sender join/);
  });

  it.each(from(7))('v%s: join rule knock lets the invited join', (v) => {
    const room = standardRoom(v, { joinRule: 'knock' });
    expectDenied(room.check(room.member(BOB, BOB, 'join')), /^m\.room\.member join: join rule is knock and the sender is not invited/);
    room.apply(room.member(ALICE, BOB, 'invite'));
    expectAllowed(room.check(room.member(BOB, BOB, 'join')));
  });

  it.each(upTo(6))('v%s: join rule knock does not exist, so even the invited cannot join', (v) => {
    const room = standardRoom(v, { joinRule: 'knock' });
    room.apply(room.member(ALICE, BOB, 'invite'));
    expectDenied(room.check(room.member(BOB, BOB, 'join')), /^m\.room\.member join: join rule "knock" does not let the sender join/);
  });
});

function signedBy(server: string): Record<string, Record<string, string>> {
  return { [server]: { 'ed25519:a': 'sig' } };
}

describe('m.room.member join: restricted rooms (v8+) and knock_restricted (v10+)', () => {
  function restrictedRoom(v: string, rule = 'restricted'): TestRoom {
    const room = addMember(standardRoom(v, { joinRule: 'invite', users: { [CAROL]: 0 }, pl: { invite: 50 } }), CAROL);
    room.apply(room.joinRules(ALICE, rule, { allow: [{ type: 'm.room_membership', room_id: '!space:example.org' }] }));
    return room;
  }
  function viaJoin(room: TestRoom, user: string, via: string, server = via.split(':')[1]!) {
    return room.event({
      type: 'm.room.member',
      sender: user,
      state_key: user,
      content: { membership: 'join', join_authorised_via_users_server: via },
      signatures: { ...signedBy(user.split(':')[1]!), ...signedBy(server) },
    });
  }

  it.each(from(8))('v%s: a join authorised by a joined user with the invite level is allowed', (v) => {
    const room = restrictedRoom(v);
    expectAllowed(room.check(viaJoin(room, DAVE, ALICE)));
  });

  it.each(upTo(7))('v%s: the restricted join rule does not exist, so such a join is rejected', (v) => {
    const room = restrictedRoom(v);
    expectDenied(room.check(viaJoin(room, DAVE, ALICE)), /^m\.room\.member join: join rule "restricted" does not let the sender join/);
  });

  it.each(from(8))('v%s: a restricted join without join_authorised_via_users_server is rejected', (v) => {
    const room = restrictedRoom(v);
    expectDenied(room.check(room.member(DAVE, DAVE, 'join')), /^m\.room\.member join: join rule is restricted and the sender is neither invited nor authorised/);
  });

  it.each(from(8))('v%s: an invited user joins a restricted room without an authoriser', (v) => {
    const room = restrictedRoom(v);
    room.apply(room.member(ALICE, DAVE, 'invite'));
    expectAllowed(room.check(room.member(DAVE, DAVE, 'join')));
  });

  it.each(from(8))('v%s: the authorising user must be joined', (v) => {
    const room = restrictedRoom(v);
    expectDenied(room.check(viaJoin(room, DAVE, EVE)), /^m\.room\.member join: restricted join authorised via @eve:example\.org, who is not joined/);
  });

  it.each(from(8))('v%s: the authorising user must have the invite level', (v) => {
    const room = restrictedRoom(v);
    expectDenied(room.check(viaJoin(room, DAVE, CAROL)), /^m\.room\.member join: restricted join authorised via @carol:example\.org, whose level 0 is below the invite level 50/);
  });

  it.each(from(8))("v%s: the event must be signed by the authorising user's server (rule 4.2)", (v) => {
    const room = restrictedRoom(v);
    const e = viaJoin(room, DAVE, ALICE);
    e.signatures = signedBy('other.example');
    expectDenied(room.check(e), /^m\.room\.member: not signed by example\.org, the server of join_authorised_via_users_server/);
    // A caller-supplied verifier is used instead of the presence test.
    expectDenied(room.check(viaJoin(room, DAVE, ALICE), { isSignedBy: () => false }), /^m\.room\.member: not signed by example\.org/);
    expectAllowed(room.check(e, { isSignedBy: (_e, s) => s === 'example.org' }));
  });

  it.each(upTo(7))('v%s: join_authorised_via_users_server means nothing, so no signature is needed', (v) => {
    const room = standardRoom(v, { joinRule: 'public' });
    const e = viaJoin(room, DAVE, ALICE);
    e.signatures = signedBy('other.example');
    expectAllowed(room.check(e));
  });

  it.each(from(10))('v%s: knock_restricted allows joins authorised by a member', (v) => {
    const room = restrictedRoom(v, 'knock_restricted');
    expectAllowed(room.check(viaJoin(room, DAVE, ALICE)));
    expectDenied(room.check(room.member(DAVE, DAVE, 'join')), /^m\.room\.member join: join rule is knock_restricted and the sender is neither invited/);
  });

  it.each(['8', '9'])('v%s: knock_restricted does not exist, so joins are rejected', (v) => {
    const room = restrictedRoom(v, 'knock_restricted');
    expectDenied(room.check(viaJoin(room, DAVE, ALICE)), /^m\.room\.member join: join rule "knock_restricted" does not let the sender join/);
  });
});

describe('m.room.member invite', () => {
  it.each(ALL_VERSIONS)('v%s: a joined member with the invite level invites', (v) => {
    const room = addMember(standardRoom(v), BOB);
    expectAllowed(room.check(room.member(BOB, CAROL, 'invite')));
  });

  it.each(ALL_VERSIONS)('v%s: the sender must be joined', (v) => {
    const room = standardRoom(v);
    expectDenied(room.check(room.member(BOB, CAROL, 'invite')), /^m\.room\.member invite: sender is not joined to the room/);
  });

  it.each(ALL_VERSIONS)('v%s: the target must not be joined or banned', (v) => {
    const room = addMember(standardRoom(v), BOB);
    expectDenied(room.check(room.member(ALICE, BOB, 'invite')), /^m\.room\.member invite: target user is already joined/);
    room.apply(room.member(ALICE, CAROL, 'ban'));
    expectDenied(room.check(room.member(ALICE, CAROL, 'invite')), /^m\.room\.member invite: target user is banned/);
  });

  it.each(ALL_VERSIONS)('v%s: the sender needs the invite level', (v) => {
    const room = addMember(standardRoom(v, { pl: { invite: 50 }, users: { [BOB]: 10 } }), BOB);
    expectDenied(room.check(room.member(BOB, CAROL, 'invite')), /^m\.room\.member invite: sender's level 10 is below the invite level 50/);
    expectAllowed(room.check(room.member(ALICE, CAROL, 'invite')));
  });
});

describe('m.room.member leave', () => {
  it.each(ALL_VERSIONS)('v%s: leaving from join, and rejecting an invite, are allowed', (v) => {
    const room = addMember(standardRoom(v), BOB);
    expectAllowed(room.check(room.member(BOB, BOB, 'leave')));
    room.apply(room.member(ALICE, CAROL, 'invite'));
    expectAllowed(room.check(room.member(CAROL, CAROL, 'leave')));
  });

  it.each(ALL_VERSIONS)('v%s: leaving when not in the room (or banned) is rejected', (v) => {
    const room = standardRoom(v);
    expectDenied(room.check(room.member(BOB, BOB, 'leave')), /^m\.room\.member leave: sender's current membership is none/);
    room.apply(room.member(ALICE, BOB, 'ban'));
    expectDenied(room.check(room.member(BOB, BOB, 'leave')), /^m\.room\.member leave: sender's current membership is ban/);
  });

  it.each(from(7))('v%s: withdrawing a knock is allowed', (v) => {
    const room = standardRoom(v, { joinRule: 'knock' });
    room.apply(room.member(BOB, BOB, 'knock'));
    expectAllowed(room.check(room.member(BOB, BOB, 'leave')));
  });

  it.each(upTo(6))('v%s: a (pre-knock) knock membership cannot be left', (v) => {
    const room = standardRoom(v, { joinRule: 'knock' });
    room.put(room.member(BOB, BOB, 'knock')); // not allowed in this version; forced into state
    expectDenied(room.check(room.member(BOB, BOB, 'leave')), /^m\.room\.member leave: sender's current membership is knock/);
  });

  it.each(ALL_VERSIONS)('v%s: a kick needs the sender joined', (v) => {
    const room = addMember(standardRoom(v, { users: { [CAROL]: 100 } }), BOB);
    expectDenied(room.check(room.member(CAROL, BOB, 'leave')), /^m\.room\.member leave \(kick\): sender is not joined/);
  });

  it.each(ALL_VERSIONS)('v%s: a kick needs the kick level and a target below the sender', (v) => {
    const room = standardRoom(v, { users: { [BOB]: 50, [CAROL]: 49, [DAVE]: 50 }, pl: { kick: 50 } });
    addMember(room, BOB);
    addMember(room, CAROL);
    addMember(room, DAVE);
    addMember(room, EVE);
    expectAllowed(room.check(room.member(BOB, CAROL, 'leave')));
    expectDenied(room.check(room.member(BOB, DAVE, 'leave')), /^m\.room\.member leave \(kick\): target's level 50 is not below the sender's 50/);
    expectDenied(room.check(room.member(CAROL, EVE, 'leave')), /^m\.room\.member leave \(kick\): sender's level 49 is below the kick level 50/);
    expectDenied(room.check(room.member(BOB, ALICE, 'leave')), /^m\.room\.member leave \(kick\): target's level (100|Infinity) is not below the sender's 50/);
  });

  it.each(ALL_VERSIONS)('v%s: unbanning needs the ban level as well as the kick level', (v) => {
    const room = standardRoom(v, { users: { [BOB]: 50 }, pl: { kick: 50, ban: 60 } });
    addMember(room, BOB);
    room.apply(room.member(ALICE, CAROL, 'ban'));
    expectDenied(room.check(room.member(BOB, CAROL, 'leave')), /^m\.room\.member leave \(unban\): sender's level 50 is below the ban level 60/);
    expectAllowed(room.check(room.member(ALICE, CAROL, 'leave')));
  });
});

describe('m.room.member ban', () => {
  it.each(ALL_VERSIONS)('v%s: a ban needs the ban level and a target below the sender', (v) => {
    const room = standardRoom(v, { users: { [BOB]: 50, [CAROL]: 49, [EVE]: 50 } });
    addMember(room, BOB);
    addMember(room, CAROL);
    expectAllowed(room.check(room.member(BOB, CAROL, 'ban')));
    expectDenied(room.check(room.member(BOB, EVE, 'ban')), /^m\.room\.member ban: target's level 50 is not below the sender's 50/);
    expectAllowed(room.check(room.member(BOB, DAVE, 'ban'))); // never in the room
    expectDenied(room.check(room.member(CAROL, DAVE, 'ban')), /^m\.room\.member ban: sender's level 49 is below the ban level 50/);
    expectDenied(room.check(room.member(BOB, ALICE, 'ban')), /^m\.room\.member ban: target's level (100|Infinity) is not below the sender's 50/);
  });

  it.each(ALL_VERSIONS)('v%s: a ban needs the sender joined', (v) => {
    const room = standardRoom(v, { users: { [BOB]: 100 } });
    expectDenied(room.check(room.member(BOB, CAROL, 'ban')), /^m\.room\.member ban: sender is not joined/);
  });
});

describe('m.room.member knock (v7+)', () => {
  it.each(from(7))('v%s: knocking on a knock room is allowed', (v) => {
    const room = standardRoom(v, { joinRule: 'knock' });
    expectAllowed(room.check(room.member(DAVE, DAVE, 'knock')));
  });

  it.each(upTo(6))('v%s: knock is an unknown membership', (v) => {
    const room = standardRoom(v, { joinRule: 'knock' });
    expectDenied(room.check(room.member(DAVE, DAVE, 'knock')), /^m\.room\.member: unknown membership "knock"/);
  });

  it.each(from(7))('v%s: knocking needs the knock join rule', (v) => {
    const room = standardRoom(v, { joinRule: 'invite' });
    expectDenied(room.check(room.member(DAVE, DAVE, 'knock')), /^m\.room\.member knock: join rule is "invite", not knock/);
  });

  it.each(from(10))('v%s: knocking on a knock_restricted room is allowed', (v) => {
    const room = standardRoom(v, { joinRule: 'knock_restricted' });
    expectAllowed(room.check(room.member(DAVE, DAVE, 'knock')));
  });

  it.each(['7', '8', '9'])('v%s: knock_restricted does not exist, so knocking on it is rejected', (v) => {
    const room = standardRoom(v, { joinRule: 'knock_restricted' });
    expectDenied(room.check(room.member(DAVE, DAVE, 'knock')), /^m\.room\.member knock: join rule is "knock_restricted", not knock$/);
  });

  it.each(from(7))('v%s: knocking for someone else is rejected', (v) => {
    const room = addMember(standardRoom(v, { joinRule: 'knock' }), BOB);
    expectDenied(room.check(room.member(BOB, DAVE, 'knock')), /^m\.room\.member knock: sender does not match state_key/);
  });

  it.each(from(7))('v%s: the banned, invited and joined cannot knock', (v) => {
    const room = addMember(standardRoom(v, { joinRule: 'knock' }), BOB);
    expectDenied(room.check(room.member(BOB, BOB, 'knock')), /^m\.room\.member knock: sender is already joined/);
    room.apply(room.member(ALICE, CAROL, 'invite'));
    expectDenied(room.check(room.member(CAROL, CAROL, 'knock')), /^m\.room\.member knock: sender is already invited/);
    room.apply(room.member(ALICE, DAVE, 'ban'));
    expectDenied(room.check(room.member(DAVE, DAVE, 'knock')), /^m\.room\.member knock: sender is already banned/);
    room.apply(room.member(BOB, BOB, 'leave'));
    expectAllowed(room.check(room.member(BOB, BOB, 'knock')));
  });
});

describe('v12 creators in membership rules', () => {
  it('an additional creator outranks a user at 100 and cannot be kicked by the other creator', () => {
    const room = standardRoom('12', { createContent: { additional_creators: [BOB] }, users: { [CAROL]: 100 } });
    addMember(room, BOB);
    addMember(room, CAROL);
    expectAllowed(room.check(room.member(BOB, CAROL, 'leave')));
    expectDenied(room.check(room.member(CAROL, BOB, 'leave')), /^m\.room\.member leave \(kick\): target's level Infinity is not below the sender's 100/);
    expectDenied(room.check(room.member(ALICE, BOB, 'ban')), /^m\.room\.member ban: target's level Infinity is not below the sender's Infinity/);
  });

  it('v11: additional_creators gives no power', () => {
    const room = standardRoom('11', { createContent: { additional_creators: [BOB] }, users: { [CAROL]: 100 } });
    addMember(room, BOB);
    addMember(room, CAROL);
    expectDenied(room.check(room.member(BOB, CAROL, 'leave')), /^m\.room\.member leave \(kick\): sender's level 0 is below the kick level 50/);
    expectAllowed(room.check(room.member(CAROL, BOB, 'leave')));
  });
});

it('fixture sanity: every version builds a room where the creator is joined', () => {
  for (const v of ALL_VERSIONS) expect(standardRoom(v).state.size).toBe(4);
});

describe('m.room.member join: create events without an event_id (v3+ as received)', () => {
  it.each(['3', '4', '10', '11'])("v%s: the creator's first join is allowed when prev_events holds the create event's hash id", (v) => {
    const create = {
      room_id: '!room:example.org',
      sender: ALICE,
      origin_server_ts: 1,
      type: 'm.room.create',
      state_key: '',
      content: Number(v) >= 11 ? { room_version: v } : { creator: ALICE, room_version: v },
      prev_events: [],
      auth_events: [],
      depth: 1,
      hashes: { sha256: 'x' },
      signatures: {},
    };
    const createId = eventId(create, v);
    const join = {
      room_id: '!room:example.org',
      sender: ALICE,
      origin_server_ts: 2,
      type: 'm.room.member',
      state_key: ALICE,
      content: { membership: 'join' },
      prev_events: [createId],
      auth_events: [createId],
      depth: 2,
    };
    expectAllowed(checkAuth(v, join, [create]));
    expectDenied(checkAuth(v, { ...join, prev_events: ['$somethingelse'] }, [create]), /join rule is invite/);
  });
});
