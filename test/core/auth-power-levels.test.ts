import { describe, expect, it } from 'vitest';
import { parseLevel, sendLevel, userPowerLevel } from '../../src/core/auth/index.js';
import type { JsonObject, JsonValue, PDU } from '../../src/core/pdu.js';
import { requireRoomVersion } from '../../src/core/room-versions.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, TestRoom, addMember, expectAllowed, expectDenied, standardRoom } from './fixtures/auth.js';

const from = (n: number): string[] => ALL_VERSIONS.filter((v) => Number(v) >= n);
const upTo = (n: number): string[] => ALL_VERSIONS.filter((v) => Number(v) <= n);

/** A room where BOB (joined) has level 50 and the PL event has `pl` on top. */
function modRoom(v: string, pl: JsonObject = {}, users: JsonObject = {}): TestRoom {
  return addMember(standardRoom(v, { users: { [BOB]: 50, ...users }, pl }), BOB);
}

/** The current PL content with `change` applied (undefined values delete keys). */
function changed(room: TestRoom, change: Record<string, JsonValue | undefined>): JsonObject {
  const cur = room.state.get(`m.room.power_levels\u0000`)!.content;
  const next: JsonObject = JSON.parse(JSON.stringify(cur));
  for (const [k, val] of Object.entries(change)) {
    if (val === undefined) delete next[k];
    else next[k] = val;
  }
  return next;
}

describe('m.room.power_levels: shape of users', () => {
  it.each(ALL_VERSIONS)('v%s: users keys must be valid user IDs', (v) => {
    const room = modRoom(v);
    const users = room.state.get('m.room.power_levels\u0000')!.content['users'] as JsonObject;
    expectDenied(
      room.check(room.powerLevels(ALICE, changed(room, { users: { ...users, 'not-a-user': 10 } }))),
      /^m\.room\.power_levels: `users` key "not-a-user" is not a valid user ID/,
    );
    expectAllowed(room.check(room.powerLevels(ALICE, changed(room, { users: { ...users, [CAROL]: 10 } }))));
  });

  it.each(ALL_VERSIONS)('v%s: users must be an object', (v) => {
    const room = modRoom(v);
    expectDenied(room.check(room.powerLevels(ALICE, changed(room, { users: [BOB] }))), /^m\.room\.power_levels: `users` is not an object/);
  });

  it.each(upTo(9))('v%s: a users value that is a string holding an integer is accepted', (v) => {
    const room = modRoom(v);
    expectAllowed(room.check(room.powerLevels(ALICE, changed(room, { users: { ...(room.rv.privilegedCreators ? {} : { [ALICE]: '100' }), [BOB]: ' +050 ' } }))));
  });

  it.each(from(10))('v%s: a users value that is a string is rejected', (v) => {
    const room = modRoom(v);
    expectDenied(room.check(room.powerLevels(ALICE, changed(room, { users: { [BOB]: '50' } }))), /^m\.room\.power_levels: `users` value for @bob:example\.org is not an integer$/);
  });

  it.each(upTo(9))('v%s: a users value that is a string not holding an integer is rejected', (v) => {
    const room = modRoom(v);
    for (const bad of ['fifty', '5.0', '1e3', '', '- 5']) {
      expectDenied(
        room.check(room.powerLevels(ALICE, changed(room, { users: { [ALICE]: 100, [BOB]: bad } }))),
        /^m\.room\.power_levels: `users` value for @bob:example\.org is not an integer \(or a string holding one\)/,
      );
    }
  });

  it.each(upTo(5))('v%s: float levels are accepted (and truncated)', (v) => {
    const room = modRoom(v);
    const e = room.powerLevels(ALICE, changed(room, { users: { [ALICE]: 100, [BOB]: 50.57 } }));
    expectAllowed(room.check(e));
    expect(userPowerLevel(room.rv, BOB, e, room.create)).toBe(50);
  });

  it.each(from(6))('v%s: float levels are rejected', (v) => {
    const room = modRoom(v);
    expectDenied(room.check(room.powerLevels(ALICE, changed(room, { users: { [BOB]: 50.5 } }))), /^m\.room\.power_levels: `users` value for @bob:example\.org is not an integer/);
  });

  it.each(ALL_VERSIONS)('v%s: users values that are not numbers at all are rejected', (v) => {
    const room = modRoom(v);
    expectDenied(room.check(room.powerLevels(ALICE, changed(room, { users: { [BOB]: null } }))), /^m\.room\.power_levels: `users` value for @bob:example\.org is not an integer/);
  });
});

describe('m.room.power_levels: integer-only levels (v10+)', () => {
  it.each(from(10))('v%s: a top-level level as a string is rejected', (v) => {
    const room = modRoom(v);
    for (const key of ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite']) {
      expectDenied(room.check(room.powerLevels(ALICE, changed(room, { [key]: '0' }))), new RegExp(`^m\\.room\\.power_levels: \`${key}\` is not an integer$`));
    }
  });

  it.each(upTo(9))('v%s: a top-level level as a string is accepted', (v) => {
    const room = modRoom(v);
    expectAllowed(room.check(room.powerLevels(ALICE, changed(room, { ban: '40', kick: ' 40 ', state_default: '+50' }))));
  });

  it.each(from(10))('v%s: events and notifications must be objects of integers', (v) => {
    const room = modRoom(v);
    expectDenied(
      room.check(room.powerLevels(ALICE, changed(room, { events: { 'm.room.name': '50' } }))),
      /^m\.room\.power_levels: `events` value for "m\.room\.name" is not an integer/,
    );
    expectDenied(room.check(room.powerLevels(ALICE, changed(room, { events: ['m.room.name'] }))), /^m\.room\.power_levels: `events` is not an object/);
    expectDenied(
      room.check(room.powerLevels(ALICE, changed(room, { notifications: { room: '50' } }))),
      /^m\.room\.power_levels: `notifications` value for "room" is not an integer/,
    );
    expectDenied(room.check(room.powerLevels(ALICE, changed(room, { notifications: 50 }))), /^m\.room\.power_levels: `notifications` is not an object/);
    expectAllowed(room.check(room.powerLevels(ALICE, changed(room, { events: { 'm.room.name': 50 }, notifications: { room: 50 } }))));
  });

  it.each(upTo(9))('v%s: events values as strings are accepted', (v) => {
    const room = modRoom(v);
    expectAllowed(room.check(room.powerLevels(ALICE, changed(room, { events: { 'm.room.name': '50' }, notifications: { room: '50' } }))));
  });
});

describe('m.room.power_levels: the first power levels event', () => {
  it.each(upTo(11))('v%s: with no previous power levels the creator may set anything', (v) => {
    const room = new TestRoom(v);
    room.apply(room.member(ALICE, ALICE, 'join'));
    expectAllowed(room.check(room.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 9000 }, ban: 9000 })));
  });

  it.each(upTo(11))('v%s: with no power levels, others lack the state_default of 50', (v) => {
    const room = new TestRoom(v);
    room.apply(room.member(ALICE, ALICE, 'join'));
    room.apply(room.joinRules(ALICE, 'public'));
    room.apply(room.member(BOB, BOB, 'join'));
    expectDenied(room.check(room.powerLevels(BOB, { users: { [BOB]: 100 } })), /^m\.room\.power_levels: sender's level 0 is below the 50 required to send it/);
  });
});

describe('m.room.power_levels: changing levels', () => {
  it.each(ALL_VERSIONS)("v%s: a top-level level may move within the sender's level", (v) => {
    const room = modRoom(v, { ban: 50 });
    expectAllowed(room.check(room.powerLevels(BOB, changed(room, { ban: 20 }))));
    expectAllowed(room.check(room.powerLevels(BOB, changed(room, { invite: 50 }))));
  });

  it.each(ALL_VERSIONS)('v%s: a top-level level above the sender cannot be changed or removed', (v) => {
    const room = modRoom(v, { ban: 60 });
    expectDenied(room.check(room.powerLevels(BOB, changed(room, { ban: 20 }))), /^m\.room\.power_levels: cannot change `ban`: its current level 60 is above the sender's 50/);
    expectDenied(room.check(room.powerLevels(BOB, changed(room, { ban: undefined }))), /^m\.room\.power_levels: cannot change `ban`: its current level 60/);
  });

  it.each(ALL_VERSIONS)('v%s: a top-level level cannot be set above the sender', (v) => {
    const room = modRoom(v);
    expectDenied(room.check(room.powerLevels(BOB, changed(room, { kick: 51 }))), /^m\.room\.power_levels: cannot set `kick` to 51, above the sender's 50/);
  });

  it.each(upTo(9))('v%s: "60" and 60 are the same level, so rewriting one as the other is no change', (v) => {
    const room = modRoom(v, { ban: '60' });
    expectAllowed(room.check(room.powerLevels(BOB, changed(room, { ban: 60 }))));
  });

  it.each(ALL_VERSIONS)('v%s: events entries: changing/removing one above the sender is rejected', (v) => {
    const room = modRoom(v, { events: { 'm.room.name': 60, 'm.room.topic': 10 } });
    expectDenied(
      room.check(room.powerLevels(BOB, changed(room, { events: { 'm.room.name': 0, 'm.room.topic': 10 } }))),
      /^m\.room\.power_levels: cannot change `events` entry "m\.room\.name": its current level 60 is above the sender's 50/,
    );
    expectDenied(room.check(room.powerLevels(BOB, changed(room, { events: { 'm.room.topic': 10 } }))), /^m\.room\.power_levels: cannot change `events` entry "m\.room\.name"/);
    expectAllowed(room.check(room.powerLevels(BOB, changed(room, { events: { 'm.room.name': 60, 'm.room.topic': 50 } }))));
  });

  it.each(ALL_VERSIONS)('v%s: events entries: adding one above the sender is rejected', (v) => {
    const room = modRoom(v);
    expectDenied(
      room.check(room.powerLevels(BOB, changed(room, { events: { 'm.room.avatar': 51 } }))),
      /^m\.room\.power_levels: cannot set `events` entry "m\.room\.avatar" to 51, above the sender's 50/,
    );
    expectAllowed(room.check(room.powerLevels(BOB, changed(room, { events: { 'm.room.avatar': 50 } }))));
  });

  it.each(from(6))('v%s: notifications entries above the sender cannot be changed', (v) => {
    const room = modRoom(v, { notifications: { room: 60 } });
    expectDenied(
      room.check(room.powerLevels(BOB, changed(room, { notifications: { room: 0 } }))),
      /^m\.room\.power_levels: cannot change `notifications` entry "room": its current level 60/,
    );
    expectDenied(
      room.check(room.powerLevels(BOB, changed(room, { notifications: { room: 60, other: 70 } }))),
      /^m\.room\.power_levels: cannot set `notifications` entry "other" to 70/,
    );
  });

  it.each(upTo(5))('v%s: notifications are not checked', (v) => {
    const room = modRoom(v, { notifications: { room: 60 } });
    expectAllowed(room.check(room.powerLevels(BOB, changed(room, { notifications: { room: 0, other: 70 } }))));
  });

  it.each(ALL_VERSIONS)("v%s: users: another user's entry at or above the sender's level cannot be changed", (v) => {
    const room = modRoom(v, {}, { [CAROL]: 50 });
    const users = room.state.get('m.room.power_levels\u0000')!.content['users'] as JsonObject;
    expectDenied(
      room.check(room.powerLevels(BOB, changed(room, { users: { ...users, [CAROL]: 0 } }))),
      /^m\.room\.power_levels: cannot change the level of @carol:example\.org: their current level 50 is not below the sender's 50/,
    );
    const { [CAROL]: _c, ...withoutCarol } = users;
    expectDenied(room.check(room.powerLevels(BOB, changed(room, { users: withoutCarol }))), /^m\.room\.power_levels: cannot change the level of @carol:example\.org/);
  });

  it.each(ALL_VERSIONS)("v%s: users: lower entries may change, the sender's own may drop, none may exceed the sender", (v) => {
    const room = modRoom(v, {}, { [CAROL]: 10 });
    const users = room.state.get('m.room.power_levels\u0000')!.content['users'] as JsonObject;
    expectAllowed(room.check(room.powerLevels(BOB, changed(room, { users: { ...users, [CAROL]: 50 } }))));
    expectAllowed(room.check(room.powerLevels(BOB, changed(room, { users: { ...users, [BOB]: 10 } }))));
    expectDenied(
      room.check(room.powerLevels(BOB, changed(room, { users: { ...users, [CAROL]: 51 } }))),
      /^m\.room\.power_levels: cannot set the level of @carol:example\.org to 51, above the sender's 50/,
    );
    expectDenied(room.check(room.powerLevels(BOB, changed(room, { users: { ...users, [BOB]: 51 } }))), /^m\.room\.power_levels: cannot set the level of @bob:example\.org to 51/);
    expectDenied(
      room.check(room.powerLevels(BOB, changed(room, { users: { ...users, '@new:example.org': 60 } }))),
      /^m\.room\.power_levels: cannot set the level of @new:example\.org to 60/,
    );
  });

  it.each(ALL_VERSIONS)('v%s: the power levels event itself needs its send level', (v) => {
    const room = modRoom(v, { events: { 'm.room.power_levels': 100 } });
    expectDenied(room.check(room.powerLevels(BOB, changed(room, { ban: 40 }))), /^m\.room\.power_levels: sender's level 50 is below the 100 required to send it/);
  });
});

describe('m.room.power_levels: v12 creators', () => {
  it('listing the create sender in users is rejected (v12), allowed in v11', () => {
    const r12 = modRoom('12');
    expectDenied(r12.check(r12.powerLevels(ALICE, changed(r12, { users: { [ALICE]: 100, [BOB]: 50 } }))), /^m\.room\.power_levels: `users` lists room creator @alice:example\.org/);
    const r11 = modRoom('11');
    expectAllowed(r11.check(r11.powerLevels(ALICE, changed(r11, { users: { [ALICE]: 100, [BOB]: 50 } }))));
  });

  it('listing an additional creator in users is rejected', () => {
    const room = addMember(standardRoom('12', { createContent: { additional_creators: [CAROL] }, users: { [BOB]: 50 } }), BOB);
    expectDenied(
      room.check(room.powerLevels(ALICE, changed(room, { users: { [BOB]: 50, [CAROL]: 1 } }))),
      /^m\.room\.power_levels: `users` lists room creator @carol:example\.org/,
    );
  });

  it('a creator (infinite power) may set any level', () => {
    const room = modRoom('12', { ban: 9_000_000 });
    expectAllowed(room.check(room.powerLevels(ALICE, changed(room, { ban: 1, users: { [BOB]: 2 ** 53 - 1 } }))));
  });

  it('an additional creator is infinitely powerful too', () => {
    const room = addMember(standardRoom('12', { createContent: { additional_creators: [CAROL] } }), CAROL);
    expectAllowed(room.check(room.powerLevels(CAROL, changed(room, { users: { [BOB]: 2 ** 53 - 1 } }))));
    const r11 = addMember(standardRoom('11', { createContent: { additional_creators: [CAROL] } }), CAROL);
    expectDenied(
      r11.check(r11.powerLevels(CAROL, changed(r11, { users: { [ALICE]: 100, [BOB]: 1 } }))),
      /^m\.room\.power_levels: sender's level 0 is below the 50 required to send it/,
    );
  });
});

describe('userPowerLevel', () => {
  const pl = (content: JsonObject): PDU => ({
    room_id: '!r:x',
    sender: ALICE,
    type: 'm.room.power_levels',
    state_key: '',
    content,
    prev_events: [],
    auth_events: [],
    depth: 1,
    origin_server_ts: 1,
  });

  it('with no power levels event: the creator has 100, everyone else 0 (v1-v11)', () => {
    for (const v of upTo(11)) {
      const room = new TestRoom(v, ALICE, Number(v) <= 10 ? { creator: BOB } : {});
      const creator = Number(v) <= 10 ? BOB : ALICE;
      const other = creator === BOB ? ALICE : BOB;
      expect(userPowerLevel(room.rv, creator, undefined, room.create), `v${v}`).toBe(100);
      expect(userPowerLevel(room.rv, other, undefined, room.create), `v${v}`).toBe(0);
    }
  });

  it('v12: creators have Infinity with or without power levels; others the usual', () => {
    const room = new TestRoom('12', ALICE, { additional_creators: [BOB] });
    expect(userPowerLevel(room.rv, ALICE, undefined, room.create)).toBe(Infinity);
    expect(userPowerLevel(room.rv, BOB, undefined, room.create)).toBe(Infinity);
    expect(userPowerLevel(room.rv, CAROL, undefined, room.create)).toBe(0);
    expect(userPowerLevel(room.rv, ALICE, pl({ users_default: 5 }), room.create)).toBe(Infinity);
    expect(userPowerLevel(room.rv, CAROL, pl({ users_default: 5 }), room.create)).toBe(5);
  });

  it('users entry, else users_default, else 0', () => {
    const rv = requireRoomVersion('10');
    expect(userPowerLevel(rv, BOB, pl({ users: { [BOB]: 42 }, users_default: 7 }), undefined)).toBe(42);
    expect(userPowerLevel(rv, CAROL, pl({ users: { [BOB]: 42 }, users_default: 7 }), undefined)).toBe(7);
    expect(userPowerLevel(rv, CAROL, pl({}), undefined)).toBe(0);
  });

  it('string levels count in v9 and not in v10', () => {
    expect(userPowerLevel(requireRoomVersion('9'), BOB, pl({ users: { [BOB]: ' +007 ' } }), undefined)).toBe(7);
    expect(userPowerLevel(requireRoomVersion('10'), BOB, pl({ users: { [BOB]: '7' }, users_default: 3 }), undefined)).toBe(3);
  });

  it('parseLevel follows each version', () => {
    expect(parseLevel(requireRoomVersion('5'), -3.7)).toBe(-3);
    expect(parseLevel(requireRoomVersion('5'), 5.114698e4)).toBe(51146);
    expect(parseLevel(requireRoomVersion('6'), 3.5)).toBeUndefined();
    expect(parseLevel(requireRoomVersion('9'), '000100')).toBe(100);
    expect(parseLevel(requireRoomVersion('9'), '-100')).toBe(-100);
    expect(parseLevel(requireRoomVersion('9'), '1_000')).toBeUndefined();
    expect(parseLevel(requireRoomVersion('10'), '100')).toBeUndefined();
    expect(parseLevel(requireRoomVersion('10'), true)).toBeUndefined();
  });

  it('send levels default to state_default 50 and events_default 0', () => {
    const rv = requireRoomVersion('10');
    expect(sendLevel(rv, undefined, 'm.room.name', true)).toBe(50);
    expect(sendLevel(rv, undefined, 'm.room.message', false)).toBe(0);
    expect(sendLevel(rv, pl({ events: { 'm.room.name': 10 }, state_default: 70, events_default: 5 }), 'm.room.name', true)).toBe(10);
    expect(sendLevel(rv, pl({ events: { 'm.room.name': 10 }, state_default: 70, events_default: 5 }), 'm.room.topic', true)).toBe(70);
    expect(sendLevel(rv, pl({ events: { 'm.room.name': 10 }, state_default: 70, events_default: 5 }), 'm.room.message', false)).toBe(5);
  });
});
