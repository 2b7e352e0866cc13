import { describe, expect, it } from 'vitest';
import { isPowerEvent } from '../../src/core/auth/index.js';
import type { PDU } from '../../src/core/pdu.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, DAVE, addMember, expectAllowed, expectDenied, standardRoom } from './fixtures/auth.js';

const from = (n: number): string[] => ALL_VERSIONS.filter((v) => Number(v) >= n);
const upTo = (n: number): string[] => ALL_VERSIONS.filter((v) => Number(v) <= n);

describe('m.room.aliases (v1-v5 special rule)', () => {
  it.each(upTo(5))("v%s: aliases for the sender's own server are allowed, even from a non-member", (v) => {
    const room = standardRoom(v);
    const e = room.event({ type: 'm.room.aliases', sender: DAVE, state_key: 'other.example', content: { aliases: ['#a:other.example'] } });
    expectAllowed(room.check(e));
  });

  it.each(upTo(5))('v%s: aliases for another server are rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = room.event({ type: 'm.room.aliases', sender: BOB, state_key: 'other.example', content: { aliases: [] } });
    expectDenied(room.check(e), /^m\.room\.aliases: state_key is not the sender's server/);
  });

  it.each(upTo(5))('v%s: aliases without a state_key are rejected', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = room.event({ type: 'm.room.aliases', sender: BOB, content: { aliases: [] } });
    expectDenied(room.check(e), /^m\.room\.aliases: event has no state_key/);
  });

  it.each(from(6))('v%s: aliases are ordinary state: a non-member is rejected', (v) => {
    const room = standardRoom(v);
    const e = room.event({ type: 'm.room.aliases', sender: DAVE, state_key: 'other.example', content: { aliases: [] } });
    expectDenied(room.check(e), /^m\.room\.aliases: sender is not joined to the room/);
  });

  it.each(from(6))('v%s: aliases are ordinary state: a member needs the state level', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = room.event({ type: 'm.room.aliases', sender: BOB, state_key: 'example.org', content: { aliases: [] } });
    expectDenied(room.check(e), /^m\.room\.aliases: sender's level 0 is below the 50 required to send it/);
    expectAllowed(room.check(room.event({ type: 'm.room.aliases', sender: ALICE, state_key: 'example.org', content: { aliases: [] } })));
  });
});

describe('the sender must be joined', () => {
  it.each(ALL_VERSIONS)('v%s: messages from non-members are rejected, from members allowed', (v) => {
    const room = standardRoom(v);
    expectDenied(room.check(room.event({ type: 'm.room.message', sender: BOB, content: {} })), /^m\.room\.message: sender is not joined to the room/);
    room.apply(room.member(ALICE, BOB, 'invite'));
    expectDenied(room.check(room.event({ type: 'm.room.message', sender: BOB, content: {} })), /^m\.room\.message: sender is not joined to the room/);
    room.apply(room.member(BOB, BOB, 'join'));
    expectAllowed(room.check(room.event({ type: 'm.room.message', sender: BOB, content: {} })));
  });
});

describe('required power level', () => {
  it.each(ALL_VERSIONS)('v%s: messages need events_default, or their events entry', (v) => {
    const room = addMember(standardRoom(v, { pl: { events_default: 10, events: { 'm.reaction': 0 } }, users: { [CAROL]: 10 } }), BOB);
    addMember(room, CAROL);
    expectDenied(room.check(room.event({ type: 'm.room.message', sender: BOB, content: {} })), /^m\.room\.message: sender's level 0 is below the 10 required to send it/);
    expectAllowed(room.check(room.event({ type: 'm.reaction', sender: BOB, content: {} })));
    expectAllowed(room.check(room.event({ type: 'm.room.message', sender: CAROL, content: {} })));
  });

  it.each(ALL_VERSIONS)('v%s: state events need state_default, or their events entry', (v) => {
    const room = addMember(standardRoom(v, { pl: { events: { 'm.room.topic': 0 } } }), BOB);
    expectDenied(
      room.check(room.event({ type: 'm.room.name', sender: BOB, state_key: '', content: { name: 'x' } })),
      /^m\.room\.name: sender's level 0 is below the 50 required to send it/,
    );
    expectAllowed(room.check(room.event({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 'x' } })));
  });

  it.each(ALL_VERSIONS)('v%s: join rules changes need the state level', (v) => {
    const room = addMember(standardRoom(v), BOB);
    expectDenied(room.check(room.joinRules(BOB, 'public')), /^m\.room\.join_rules: sender's level 0 is below the 50 required/);
    expectAllowed(room.check(room.joinRules(ALICE, 'public')));
  });
});

describe('state keys starting with @', () => {
  it.each(ALL_VERSIONS)("v%s: a state_key naming another user is rejected, the sender's own allowed", (v) => {
    const room = addMember(standardRoom(v, { pl: { state_default: 0 } }), BOB);
    expectDenied(
      room.check(room.event({ type: 'org.example.status', sender: BOB, state_key: CAROL, content: {} })),
      /^org\.example\.status: state_key starts with @ and is not the sender/,
    );
    expectAllowed(room.check(room.event({ type: 'org.example.status', sender: BOB, state_key: BOB, content: {} })));
    expectAllowed(room.check(room.event({ type: 'org.example.status', sender: BOB, state_key: 'x@y', content: {} })));
  });
});

describe('m.room.redaction', () => {
  it.each(['1', '2'])('v%s: a sender below the redact level may redact events from their own server', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = room.event({ type: 'm.room.redaction', sender: BOB, redacts: '$target:example.org', content: {} });
    expectAllowed(room.check(e));
  });

  it.each(['1', '2'])("v%s: a sender below the redact level may not redact other servers' events", (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = room.event({ type: 'm.room.redaction', sender: BOB, redacts: '$target:other.example', content: {} });
    expectDenied(room.check(e), /^m\.room\.redaction: sender's level 0 is below the redact level 50 and the redacted event is from another server/);
    const noTarget = room.event({ type: 'm.room.redaction', sender: BOB, content: {} });
    expectDenied(room.check(noTarget), /^m\.room\.redaction: /);
  });

  it.each(['1', '2'])("v%s: a sender at the redact level may redact any server's events", (v) => {
    const room = addMember(standardRoom(v, { users: { [BOB]: 50 } }), BOB);
    const e = room.event({ type: 'm.room.redaction', sender: BOB, redacts: '$target:other.example', content: {} });
    expectAllowed(room.check(e));
  });

  it.each(from(3))('v%s: the redact level is not an auth rule: any member may send a redaction', (v) => {
    const room = addMember(standardRoom(v), BOB);
    const e = room.rv.redactsInContent
      ? room.event({ type: 'm.room.redaction', sender: BOB, content: { redacts: '$target' } })
      : room.event({ type: 'm.room.redaction', sender: BOB, redacts: '$target', content: {} });
    expectAllowed(room.check(e));
  });

  it.each(from(3))('v%s: redactions obey their send level', (v) => {
    const room = addMember(standardRoom(v, { pl: { events: { 'm.room.redaction': 50 } } }), BOB);
    const e = room.event({ type: 'm.room.redaction', sender: BOB, redacts: '$target', content: { redacts: '$target' } });
    expectDenied(room.check(e), /^m\.room\.redaction: sender's level 0 is below the 50 required to send it/);
  });
});

describe('isPowerEvent', () => {
  const ev = (type: string, sender: string, stateKey: string | undefined, content: PDU['content'] = {}): PDU => {
    const e: PDU = { room_id: '!r:x', sender, type, content, prev_events: [], auth_events: [], depth: 1, origin_server_ts: 1 };
    if (stateKey !== undefined) e.state_key = stateKey;
    return e;
  };

  it('power levels, join rules and create (state_key "") are power events', () => {
    expect(isPowerEvent(ev('m.room.power_levels', ALICE, ''))).toBe(true);
    expect(isPowerEvent(ev('m.room.join_rules', ALICE, ''))).toBe(true);
    expect(isPowerEvent(ev('m.room.create', ALICE, ''))).toBe(true);
    expect(isPowerEvent(ev('m.room.power_levels', ALICE, 'x'))).toBe(false);
    expect(isPowerEvent(ev('m.room.power_levels', ALICE, undefined))).toBe(false);
  });

  it('kicks and bans by someone else are power events; leaving and joining are not', () => {
    expect(isPowerEvent(ev('m.room.member', ALICE, BOB, { membership: 'leave' }))).toBe(true);
    expect(isPowerEvent(ev('m.room.member', ALICE, BOB, { membership: 'ban' }))).toBe(true);
    expect(isPowerEvent(ev('m.room.member', BOB, BOB, { membership: 'leave' }))).toBe(false);
    expect(isPowerEvent(ev('m.room.member', ALICE, BOB, { membership: 'invite' }))).toBe(false);
    expect(isPowerEvent(ev('m.room.name', ALICE, ''))).toBe(false);
  });
});
