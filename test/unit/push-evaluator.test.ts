/**
 * The push rule evaluator against the spec's conditions and default rules:
 * a table of events and what each user's default ruleset makes of them,
 * then each condition kind on its own, with the spec's own examples.
 */
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/core/pdu.js';
import { globMatcher, highlights, notifies, PushEvaluator, propertyAt, splitPropertyPath, type PushRoomContext } from '../../src/services/push/evaluator.js';
import { buildRuleset, defaultRules, type PushCondition, type PushRuleset, type StoredUserRule } from '../../src/services/push/rules.js';

const ME = '@alice:example.org';
const ROOM = '!room:example.org';
const SENDER = '@bob:example.org';

function ev(type: string, content: JsonObject, extra: JsonObject = {}): JsonObject {
  return { type, content, sender: SENDER, room_id: ROOM, event_id: '$e', origin_server_ts: 1, ...extra };
}

const group: PushRoomContext = { memberCount: 5, senderPowerLevel: 0, notificationLevels: {} };
const dm: PushRoomContext = { ...group, memberCount: 2 };
const moderator: PushRoomContext = { ...group, senderPowerLevel: 50 };

const defaults = buildRuleset(ME, [], []);
const run = (event: JsonObject, room: PushRoomContext = group, rules: PushRuleset = defaults, name: string | null = 'Alice Liddell') =>
  new PushEvaluator(event, room).run(rules, ME, name);

type Outcome = 'nothing' | 'notify' | 'highlight';
const outcome = (actions: ReturnType<typeof run>): Outcome => (highlights(actions) && notifies(actions) ? 'highlight' : notifies(actions) ? 'notify' : 'nothing');

describe('default rules', () => {
  const text = (body: string, extra: JsonObject = {}) => ev('m.room.message', { msgtype: 'm.text', body, ...extra });
  const cases: [string, JsonObject, PushRoomContext, Outcome][] = [
    ['a message in a group room notifies', text('hello'), group, 'notify'],
    ['a message in a DM notifies', text('hello'), dm, 'notify'],
    ['a notice is suppressed', ev('m.room.message', { msgtype: 'm.notice', body: 'bot says hi' }), group, 'nothing'],
    ['a notice mentioning me is still suppressed (suppress_notices comes first)', ev('m.room.message', { msgtype: 'm.notice', body: 'alice' }), group, 'nothing'],
    ['m.mentions naming me highlights', text('hey', { 'm.mentions': { user_ids: [ME] } }), group, 'highlight'],
    ['m.mentions naming someone else does not', text('hey', { 'm.mentions': { user_ids: ['@carol:example.org'] } }), group, 'notify'],
    ['my display name in the body highlights (legacy rule)', text('ask Alice Liddell about it'), group, 'highlight'],
    ['my localpart as a word highlights (legacy content rule)', text('alice: look'), group, 'highlight'],
    ['my localpart inside a word does not', text('malice aforethought'), group, 'notify'],
    ['legacy rules are off when the event has m.mentions', text('alice and Alice Liddell', { 'm.mentions': {} }), group, 'notify'],
    ['@room from a sender with power 50 highlights', text('@room lunch'), moderator, 'highlight'],
    ['@room from a sender without the power does not', text('@room lunch'), group, 'notify'],
    ['m.mentions.room from a moderator highlights', text('all', { 'm.mentions': { room: true } }), moderator, 'highlight'],
    ['m.mentions.room from a plain user does not', text('all', { 'm.mentions': { room: true } }), group, 'notify'],
    ['an invite for me notifies', ev('m.room.member', { membership: 'invite' }, { state_key: ME }), group, 'notify'],
    ['an invite for someone else is a member event: nothing', ev('m.room.member', { membership: 'invite' }, { state_key: '@carol:example.org' }), group, 'nothing'],
    ['a join is nothing', ev('m.room.member', { membership: 'join' }, { state_key: SENDER }), group, 'nothing'],
    ['a tombstone highlights', ev('m.room.tombstone', { body: 'moved', replacement_room: '!new:x' }, { state_key: '' }), group, 'highlight'],
    ['a reaction is nothing', ev('m.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$x', key: '👍' } }), group, 'nothing'],
    ['a server ACL change is nothing', ev('m.room.server_acl', { allow: ['*'] }, { state_key: '' }), group, 'nothing'],
    ['an edit is nothing', text('* fixed', { 'm.relates_to': { rel_type: 'm.replace', event_id: '$x' } }), group, 'nothing'],
    [
      'an edit that mentions me still highlights',
      text('* fixed', { 'm.relates_to': { rel_type: 'm.replace', event_id: '$x' }, 'm.mentions': { user_ids: [ME] } }),
      group,
      'highlight',
    ],
    ['a call invite notifies', ev('m.call.invite', { call_id: '1', version: 0, lifetime: 1000 }), group, 'notify'],
    ['an encrypted event in a DM notifies', ev('m.room.encrypted', { algorithm: 'm.megolm.v1.aes-sha2', ciphertext: 'x' }), dm, 'notify'],
    ['an encrypted event in a group notifies', ev('m.room.encrypted', { algorithm: 'm.megolm.v1.aes-sha2', ciphertext: 'x' }), group, 'notify'],
    ['a topic change is nothing (no rule matches)', ev('m.room.topic', { topic: 'x' }, { state_key: '' }), group, 'nothing'],
    ['a custom event type is nothing', ev('org.example.thing', { data: 'alice' }), group, 'nothing'],
    ['content rules look at any event with a body', ev('org.example.thing', { body: 'alice' }), group, 'highlight'],
  ];
  it.each(cases)('%s', (_name, event, room, expected) => {
    expect(outcome(run(event, room))).toBe(expected);
  });

  it('sounds: DMs and mentions play the default sound, calls ring, group messages are silent', () => {
    const sound = (a: ReturnType<typeof run>) => a.find((x) => typeof x === 'object' && x['set_tweak'] === 'sound');
    expect(sound(run(text('hi'), dm))).toEqual({ set_tweak: 'sound', value: 'default' });
    expect(sound(run(text('hi'), group))).toBeUndefined();
    expect(sound(run(ev('m.call.invite', {}), group))).toEqual({ set_tweak: 'sound', value: 'ring' });
  });

  it('the ruleset carries the user-specific patterns and Synapse order', () => {
    const d = defaultRules(ME);
    expect(defaults.override[0]).toMatchObject({ rule_id: '.m.rule.master', enabled: false, default: true });
    expect(d.override.map((r) => r.rule_id)).toEqual([
      '.m.rule.suppress_notices',
      '.m.rule.invite_for_me',
      '.m.rule.member_event',
      '.m.rule.is_user_mention',
      '.m.rule.contains_display_name',
      '.m.rule.is_room_mention',
      '.m.rule.roomnotif',
      '.m.rule.tombstone',
      '.m.rule.reaction',
      '.m.rule.room.server_acl',
      '.m.rule.suppress_edits',
    ]);
    expect(d.content).toEqual([expect.objectContaining({ rule_id: '.m.rule.contains_user_name', pattern: 'alice' })]);
    expect(d.underride.map((r) => r.rule_id)).toEqual(['.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted']);
    expect(d.override[1]?.conditions?.[2]).toEqual({ kind: 'event_match', key: 'state_key', pattern: ME });
    expect(d.override[3]?.conditions?.[0]).toEqual({ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: ME });
  });
});

describe('user rules and their order', () => {
  const own = (r: Partial<StoredUserRule> & Pick<StoredUserRule, 'kind' | 'rule_id'>): StoredUserRule => ({
    priority: 1,
    conditions: null,
    pattern: null,
    actions: ['notify'],
    enabled: true,
    ...r,
  });
  const msg = ev('m.room.message', { msgtype: 'm.text', body: 'I like cake!' });

  it('the master rule, when enabled, silences everything, mentions included', () => {
    const rs = buildRuleset(ME, [], [{ kind: 'override', rule_id: '.m.rule.master', enabled: true, actions: null }]);
    expect(run(ev('m.room.message', { body: 'hi', 'm.mentions': { user_ids: [ME] } }), group, rs)).toEqual([]);
  });

  it('room and sender rules with no actions mute; they come after content rules', () => {
    const room = buildRuleset(ME, [own({ kind: 'room', rule_id: ROOM, actions: [] })], []);
    expect(run(msg, group, room)).toEqual([]);
    const sender = buildRuleset(ME, [own({ kind: 'sender', rule_id: SENDER, actions: [] })], []);
    expect(run(msg, group, sender)).toEqual([]);
    expect(run(ev('m.room.message', { body: 'alice?' }), group, sender)).toEqual(expect.arrayContaining(['notify'])); // the content rule matches first
    const otherRoom = buildRuleset(ME, [own({ kind: 'room', rule_id: '!other:example.org', actions: [] })], []);
    expect(run(msg, group, otherRoom)).toEqual(['notify']);
  });

  it('content rules match whole words, case-insensitively', () => {
    const rs = buildRuleset(ME, [own({ kind: 'content', rule_id: 'cake', pattern: 'CAKE', actions: ['notify', { set_tweak: 'highlight' }] })], []);
    expect(highlights(run(msg, group, rs))).toBe(true);
    expect(highlights(run(ev('m.room.message', { body: 'cakes' }), group, rs))).toBe(false);
    expect(highlights(run(ev('m.room.message', { body: 'no-cake-today' }), group, rs))).toBe(true);
  });

  it('user rules of a kind run highest priority first, before the defaults', () => {
    const rs = buildRuleset(
      ME,
      [
        own({ kind: 'underride', rule_id: 'low', priority: 1, conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }], actions: [] }),
        own({ kind: 'underride', rule_id: 'high', priority: 2, conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.*' }], actions: ['notify', { set_tweak: 'x' }] }),
      ],
      [],
    );
    expect(rs.underride.slice(0, 2).map((r) => r.rule_id)).toEqual(['high', 'low']);
    expect(run(msg, group, rs)).toEqual(['notify', { set_tweak: 'x' }]);
  });

  it('disabled rules never match; legacy actions are dropped', () => {
    const rs = buildRuleset(
      ME,
      [],
      [
        { kind: 'underride', rule_id: '.m.rule.message', enabled: false, actions: null },
        { kind: 'override', rule_id: '.m.rule.suppress_notices', enabled: null, actions: ['dont_notify'] },
      ],
    );
    expect(run(msg, group, rs)).toEqual([]);
    expect(run(ev('m.room.message', { msgtype: 'm.notice', body: 'n' }), group, rs)).toEqual([]);
    const coalesce = buildRuleset(ME, [], [{ kind: 'underride', rule_id: '.m.rule.message', enabled: null, actions: ['notify', 'coalesce'] }]);
    expect(run(msg, group, coalesce)).toEqual(['notify']);
  });

  it('a rule with an unknown condition never matches; a rule with no conditions always does', () => {
    const unknown = buildRuleset(ME, [own({ kind: 'override', rule_id: 'u', conditions: [{ kind: 'org.example.unknown' }], actions: [] })], []);
    expect(run(msg, group, unknown)).toEqual(['notify']);
    const all = buildRuleset(ME, [own({ kind: 'override', rule_id: 'a', conditions: [], actions: [] })], []);
    expect(run(msg, group, all)).toEqual([]);
  });
});

describe('conditions', () => {
  const matches = (c: PushCondition, event: JsonObject, room: PushRoomContext = group, name?: string) => new PushEvaluator(event, room).matches(c, ME, name);

  it('event_match: the spec example (whole value, case-insensitive, strings only)', () => {
    const c: PushCondition = { kind: 'event_match', key: 'content.topic', pattern: 'lunc?*' };
    const topic = (t: unknown) => ev('m.room.topic', { topic: t as JsonObject[string] }, { state_key: '' });
    expect(matches(c, topic('Lunch plans'))).toBe(true);
    expect(matches(c, topic('LUNCH'))).toBe(true);
    expect(matches(c, topic(' lunch'))).toBe(false);
    expect(matches(c, topic('lunc'))).toBe(false);
    expect(matches(c, topic(null))).toBe(false);
    expect(matches({ kind: 'event_match', key: 'content.missing', pattern: '*' }, topic('x'))).toBe(false);
    expect(matches({ kind: 'event_match', key: 'content.topic', pattern: '*' }, topic(5))).toBe(false);
  });

  it('event_match on content.body: word boundaries (the spec example)', () => {
    const c: PushCondition = { kind: 'event_match', key: 'content.body', pattern: 'ex*ple' };
    const body = (b: string) => ev('m.room.message', { body: b });
    expect(matches(c, body('An example event.'))).toBe(true);
    expect(matches(c, body('exple'))).toBe(true);
    expect(matches(c, body('An exciting triple-whammy'))).toBe(true);
    expect(matches(c, body('anexample'))).toBe(false);
  });

  it('globs: ? is one character, * any run, regex characters are literal', () => {
    expect(globMatcher('a?c', false)('abc')).toBe(true);
    expect(globMatcher('a?c', false)('ac')).toBe(false);
    expect(globMatcher('a*c', false)('ac')).toBe(true);
    expect(globMatcher('a.c', false)('abc')).toBe(false);
    expect(globMatcher('(x)+', false)('(x)+')).toBe(true);
    expect(globMatcher('a*', false)('a\nb')).toBe(true);
    expect(globMatcher('m.room.*', false)('m.room.message')).toBe(true);
  });

  it('globs on content.body: wildcards inside words and across them, boundaries at both ends', () => {
    expect(globMatcher('c?ke', true)('i like cake!')).toBe(true);
    expect(globMatcher('c?ke', true)('i like cakes')).toBe(false);
    expect(globMatcher('*ake', true)('cupcake')).toBe(true);
    expect(globMatcher('cake*lie', true)('the cake is a lie.')).toBe(true);
    expect(globMatcher('cake*lie', true)('the cake is a lies')).toBe(false);
    expect(globMatcher('?', true)('a b')).toBe(true);
    expect(globMatcher('@room', true)('hey @room!')).toBe(true);
    expect(globMatcher('@room', true)('hey@room')).toBe(true); // '@' is not a word character
    expect(globMatcher('😀?', false)('😀x')).toBe(true); // ? is one character, not one UTF-16 unit
  });

  it('pathological globs run in linear time, not exponential', () => {
    // The 'b' up front passes the literal pre-check, so the matcher really runs over 65,000 characters.
    const body = `b${'a'.repeat(65_000)}`;
    const start = Date.now();
    expect(globMatcher('a*a*a*a*a*a*a*a*a*a*b', true)(body)).toBe(false);
    expect(globMatcher('a*a*a*a*a*a*a*a*a*a*b', false)(body)).toBe(false);
    expect(globMatcher('*a*a*a*a*a*a*a*a*', false)(body)).toBe(true);
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('event_property_is: exact, typed values (the spec example)', () => {
    const create = (v: unknown) => ev('m.room.create', { 'm.federate': v as JsonObject[string] }, { state_key: '' });
    const c: PushCondition = { kind: 'event_property_is', key: 'content.m\\.federate', value: true };
    expect(matches(c, create(true))).toBe(true);
    expect(matches(c, create('true'))).toBe(false);
    expect(matches(c, create(1))).toBe(false);
    expect(matches({ kind: 'event_property_is', key: 'content.x', value: null }, ev('t', { x: null }))).toBe(true);
    expect(matches({ kind: 'event_property_is', key: 'content.x', value: null }, ev('t', {}))).toBe(false);
    expect(matches({ kind: 'event_property_is', key: 'content.x', value: 3 }, ev('t', { x: 3 }))).toBe(true);
    expect(matches({ kind: 'event_property_is', key: 'content.x', value: [1] as unknown as string }, ev('t', { x: [1] }))).toBe(false);
  });

  it('event_property_contains: arrays only, exact elements (the spec example)', () => {
    const alias = ev('m.room.canonical_alias', { alias: '#somewhere:localhost', alt_aliases: ['#somewhere:example.org', '#myroom:example.com'] }, { state_key: '' });
    expect(matches({ kind: 'event_property_contains', key: 'content.alt_aliases', value: '#myroom:example.com' }, alias)).toBe(true);
    expect(matches({ kind: 'event_property_contains', key: 'content.alt_aliases', value: ':example.com' }, alias)).toBe(false);
    expect(matches({ kind: 'event_property_contains', key: 'content.alias', value: '#somewhere:localhost' }, alias)).toBe(false);
  });

  it('contains_display_name: the name as a word, literally; an empty or absent name never matches', () => {
    const body = (b: string) => ev('m.room.message', { body: b });
    const c: PushCondition = { kind: 'contains_display_name' };
    expect(matches(c, body('hi Alice Liddell!'), group, 'alice liddell')).toBe(true);
    expect(matches(c, body('hi Alice Liddells'), group, 'Alice Liddell')).toBe(false);
    expect(matches(c, body('anything'), group, '')).toBe(false);
    expect(matches(c, body('anything'), group, undefined)).toBe(false);
    expect(matches(c, body('anything'), group, '*')).toBe(false);
    expect(matches(c, body('say *'), group, '*')).toBe(true);
  });

  it('room_member_count: ==, <, >, <=, >=, and no prefix', () => {
    const e = ev('m.room.message', { body: 'x' });
    const at = (n: number) => ({ ...group, memberCount: n });
    const is = (s: string, n: number) => matches({ kind: 'room_member_count', is: s }, e, at(n));
    expect(is('2', 2)).toBe(true);
    expect(is('==2', 3)).toBe(false);
    expect(is('<10', 9)).toBe(true);
    expect(is('<10', 10)).toBe(false);
    expect(is('>1', 2)).toBe(true);
    expect(is('<=10', 10)).toBe(true);
    expect(is('>=3', 2)).toBe(false);
    expect(is('many', 2)).toBe(false);
    expect(matches({ kind: 'room_member_count' }, e)).toBe(false);
  });

  it('sender_notification_permission: the notifications level, 50 by default', () => {
    const e = ev('m.room.message', { body: 'x' });
    const c: PushCondition = { kind: 'sender_notification_permission', key: 'room' };
    expect(matches(c, e, { ...group, senderPowerLevel: 49 })).toBe(false);
    expect(matches(c, e, { ...group, senderPowerLevel: 50 })).toBe(true);
    expect(matches(c, e, { ...group, senderPowerLevel: 10, notificationLevels: { room: 10 } })).toBe(true);
    expect(matches(c, e, { ...group, senderPowerLevel: undefined })).toBe(false);
  });

  it('dot-separated property paths with escapes', () => {
    expect(splitPropertyPath('content.m\\.relates_to.rel_type')).toEqual(['content', 'm.relates_to', 'rel_type']);
    expect(splitPropertyPath('content.m\\\\foo')).toEqual(['content', 'm\\foo']);
    expect(splitPropertyPath('content.a\\xb')).toEqual(['content', 'a\\xb']);
    expect(propertyAt({ content: { 'm.relates_to': { rel_type: 'm.thread' } } }, 'content.m\\.relates_to.rel_type')).toBe('m.thread');
    expect(propertyAt({ content: {} }, 'content.constructor')).toBeUndefined();
  });
});
