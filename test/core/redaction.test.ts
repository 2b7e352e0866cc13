import { describe, expect, it } from 'vitest';
import { redact } from '../../src/core/redaction.js';
import { UnsupportedRoomVersionError } from '../../src/core/room-versions.js';

const ALL = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];
const upTo = (last: string): string[] => ALL.slice(0, ALL.indexOf(last) + 1);
const from = (first: string): string[] => ALL.slice(ALL.indexOf(first));

function stateEvent(type: string, content: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type,
    state_key: '',
    content,
    room_id: '!r:example.org',
    sender: '@u:example.org',
    origin_server_ts: 1,
    depth: 2,
    prev_events: ['$p'],
    auth_events: ['$a'],
    hashes: { sha256: 'h' },
    signatures: { 'example.org': { 'ed25519:1': 's' } },
    ...extra,
  };
}

const contentOf = (event: Record<string, unknown>, version: string): unknown => redact(event, version)['content'];

describe('redaction: top-level keys', () => {
  const event = stateEvent(
    'm.room.message',
    {},
    {
      event_id: '$e:example.org',
      origin: 'example.org',
      membership: 'join',
      prev_state: [],
      unsigned: { age: 1 },
      age_ts: 5,
      redacts: '$x',
      custom: 1,
    },
  );
  const base = ['auth_events', 'content', 'depth', 'event_id', 'hashes', 'origin_server_ts', 'prev_events', 'room_id', 'sender', 'signatures', 'state_key', 'type'];

  it.each(upTo('10'))('v%s keeps the v1 list, including origin, membership and prev_state', (v) => {
    expect(Object.keys(redact(event, v)).sort()).toEqual([...base, 'membership', 'origin', 'prev_state'].sort());
  });

  it.each(from('11'))('v%s no longer keeps origin, membership and prev_state', (v) => {
    expect(Object.keys(redact(event, v)).sort()).toEqual(base);
  });

  it.each(ALL)('v%s drops unsigned, age_ts, a top-level redacts and unknown keys', (v) => {
    const out = redact(event, v);
    for (const k of ['unsigned', 'age_ts', 'redacts', 'custom']) expect(out).not.toHaveProperty(k);
  });

  it('keeps values as they are (signatures and hashes untouched)', () => {
    const out = redact(event, '10');
    expect(out['signatures']).toEqual({ 'example.org': { 'ed25519:1': 's' } });
    expect(out['hashes']).toEqual({ sha256: 'h' });
    expect(out['prev_events']).toEqual(['$p']);
  });
});

describe('redaction: content', () => {
  it.each(ALL)('v%s strips all content of other event types, and always leaves a content object', (v) => {
    expect(contentOf(stateEvent('m.room.message', { body: 'hi', msgtype: 'm.text' }), v)).toEqual({});
    expect(contentOf(stateEvent('m.room.name', { name: 'x' }), v)).toEqual({});
    const noContent = stateEvent('m.room.message', {});
    delete noContent['content'];
    expect(contentOf(noContent, v)).toEqual({});
    expect(contentOf(stateEvent('m.room.member', 'x' as unknown as Record<string, unknown>), v)).toEqual({});
  });

  it.each(ALL)('v%s keeps membership only (plus later additions) in m.room.member', (v) => {
    expect(contentOf(stateEvent('m.room.member', { membership: 'join', displayname: 'A', avatar_url: 'mxc://a/b' }), v)).toEqual({
      membership: 'join',
    });
  });

  it.each(ALL)('v%s keeps history_visibility', (v) => {
    expect(contentOf(stateEvent('m.room.history_visibility', { history_visibility: 'shared', x: 1 }), v)).toEqual({
      history_visibility: 'shared',
    });
  });

  const powerLevels = {
    ban: 50,
    events: { 'm.room.name': 50 },
    events_default: 0,
    kick: 50,
    redact: 50,
    state_default: 50,
    users: { '@u:example.org': 100 },
    users_default: 0,
    invite: 0,
    notifications: { room: 50 },
    historical: 100,
  };
  const keptPowerLevels = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];

  it.each(upTo('10'))('v%s keeps the eight power-level keys but not invite or notifications', (v) => {
    expect(Object.keys(contentOf(stateEvent('m.room.power_levels', powerLevels), v) as object).sort()).toEqual([...keptPowerLevels].sort());
  });

  it.each(from('11'))('v%s also keeps invite in power levels', (v) => {
    const out = contentOf(stateEvent('m.room.power_levels', powerLevels), v) as Record<string, unknown>;
    expect(Object.keys(out).sort()).toEqual([...keptPowerLevels, 'invite'].sort());
    expect(out['users']).toEqual({ '@u:example.org': 100 });
  });

  it.each(upTo('5'))('v%s keeps aliases in m.room.aliases', (v) => {
    expect(contentOf(stateEvent('m.room.aliases', { aliases: ['#a:example.org'], x: 1 }), v)).toEqual({
      aliases: ['#a:example.org'],
    });
  });

  it.each(from('6'))('v%s drops the aliases special case', (v) => {
    expect(contentOf(stateEvent('m.room.aliases', { aliases: ['#a:example.org'] }), v)).toEqual({});
  });

  const joinRules = { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: '!s:example.org' }], x: 1 };
  it.each(upTo('7'))('v%s keeps only join_rule in join rules', (v) => {
    expect(contentOf(stateEvent('m.room.join_rules', joinRules), v)).toEqual({ join_rule: 'restricted' });
  });
  it.each(from('8'))('v%s also keeps allow in join rules', (v) => {
    expect(contentOf(stateEvent('m.room.join_rules', joinRules), v)).toEqual({
      join_rule: 'restricted',
      allow: joinRules.allow,
    });
  });

  const authorisedJoin = { membership: 'join', join_authorised_via_users_server: '@admin:other.example', displayname: 'A' };
  it.each(upTo('8'))('v%s drops join_authorised_via_users_server', (v) => {
    expect(contentOf(stateEvent('m.room.member', authorisedJoin), v)).toEqual({ membership: 'join' });
  });
  it.each(from('9'))('v%s keeps join_authorised_via_users_server', (v) => {
    expect(contentOf(stateEvent('m.room.member', authorisedJoin), v)).toEqual({
      membership: 'join',
      join_authorised_via_users_server: '@admin:other.example',
    });
  });

  const thirdPartyInvite = {
    membership: 'invite',
    third_party_invite: { display_name: 'alice', signed: { mxid: '@a:example.org', token: 't', signatures: {} } },
  };
  it.each(upTo('10'))('v%s drops third_party_invite', (v) => {
    expect(contentOf(stateEvent('m.room.member', thirdPartyInvite), v)).toEqual({ membership: 'invite' });
  });
  it.each(from('11'))('v%s keeps third_party_invite.signed and nothing else of it', (v) => {
    expect(contentOf(stateEvent('m.room.member', thirdPartyInvite), v)).toEqual({
      membership: 'invite',
      third_party_invite: { signed: thirdPartyInvite.third_party_invite.signed },
    });
    // Synapse keeps an empty object when there is no `signed`, and drops a non-object.
    expect(contentOf(stateEvent('m.room.member', { membership: 'invite', third_party_invite: { display_name: 'x' } }), v)).toEqual({
      membership: 'invite',
      third_party_invite: {},
    });
    expect(contentOf(stateEvent('m.room.member', { membership: 'invite', third_party_invite: 'x' }), v)).toEqual({
      membership: 'invite',
    });
  });

  const create = { creator: '@u:example.org', room_version: '10', 'm.federate': false, predecessor: { room_id: '!o:x' } };
  it.each(upTo('10'))('v%s keeps only creator in create', (v) => {
    expect(contentOf(stateEvent('m.room.create', create), v)).toEqual({ creator: '@u:example.org' });
  });
  it.each(from('11'))('v%s keeps the whole create content', (v) => {
    expect(contentOf(stateEvent('m.room.create', create), v)).toEqual(create);
  });

  it.each(upTo('10'))('v%s strips redacts from redaction content', (v) => {
    expect(contentOf(stateEvent('m.room.redaction', { redacts: '$x', reason: 'spam' }), v)).toEqual({});
  });
  it.each(from('11'))('v%s keeps redacts in redaction content', (v) => {
    expect(contentOf(stateEvent('m.room.redaction', { redacts: '$x', reason: 'spam' }), v)).toEqual({ redacts: '$x' });
  });
});

describe('redaction: mechanics', () => {
  it('does not mutate its input', () => {
    const event = stateEvent('m.room.member', { membership: 'join', displayname: 'A' }, { unsigned: { age: 1 } });
    const before = structuredClone(event);
    redact(event, '11');
    expect(event).toEqual(before);
  });

  it('is idempotent', () => {
    for (const v of ALL) {
      const event = stateEvent('m.room.power_levels', { ban: 1, invite: 2, x: 3 }, { origin: 'o', unsigned: {} });
      expect(redact(redact(event, v), v)).toEqual(redact(event, v));
    }
  });

  it('ignores keys inherited from the prototype and a non-string type', () => {
    expect(contentOf(stateEvent('constructor', { a: 1 }), '10')).toEqual({});
    expect(contentOf(stateEvent('m.room.member', Object.create({ membership: 'join' }) as Record<string, unknown>), '10')).toEqual({});
    expect(contentOf({ type: 5, content: { membership: 'join' } }, '10')).toEqual({});
  });

  it('throws for an unknown room version', () => {
    expect(() => redact({}, '13')).toThrow(UnsupportedRoomVersionError);
  });
});
