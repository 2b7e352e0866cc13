/**
 * Push rules API: the spec's default ruleset per user, CRUD on the user's
 * own rules with before/after ordering, enabled and actions on every rule,
 * the spec's errors, m.push_rules account data, and the effect of rules on
 * notification counts.
 */
import { describe, expect, it } from 'vitest';
import { accountDataSince } from '../../src/storage/account-data.js';
import { useServerWithUsers } from '../helpers/rooms.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const enc = encodeURIComponent;
const V3 = '/_matrix/client/v3/pushrules';
const rulePath = (kind: string, id: string, attr = '') => `${V3}/global/${kind}/${enc(id)}${attr}`;

type Rule = { rule_id: string; default: boolean; enabled: boolean; actions: unknown[]; conditions?: unknown[]; pattern?: string };
type Ruleset = Record<'override' | 'content' | 'room' | 'sender' | 'underride', Rule[]>;

const { t, alice, bob } = useServerWithUsers('alice', 'bob');

async function ruleset(user: TestUser): Promise<Ruleset> {
  const res = await api(t, 'GET', `${V3}/global/`, { token: user.accessToken });
  expect(res.status).toBe(200);
  return res.body as unknown as Ruleset;
}

describe('the default ruleset', () => {
  it('GET /pushrules/ has the spec defaults, with the user filled in, under r0 and v3', async () => {
    for (const prefix of ['/_matrix/client/v3', '/_matrix/client/r0']) {
      const res = await api(t, 'GET', `${prefix}/pushrules/`, { token: alice.accessToken });
      expect(res.status).toBe(200);
      const g = (res.body as { global: Ruleset }).global;
      expect(Object.keys(g).sort()).toEqual(['content', 'override', 'room', 'sender', 'underride']);
      expect(g.override[0]).toEqual({ rule_id: '.m.rule.master', default: true, enabled: false, conditions: [], actions: [] });
      expect(g.override.map((r) => r.rule_id)).toEqual(
        expect.arrayContaining([
          '.m.rule.suppress_notices',
          '.m.rule.invite_for_me',
          '.m.rule.member_event',
          '.m.rule.is_user_mention',
          '.m.rule.is_room_mention',
          '.m.rule.tombstone',
          '.m.rule.reaction',
          '.m.rule.room.server_acl',
          '.m.rule.suppress_edits',
        ]),
      );
      const invite = g.override.find((r) => r.rule_id === '.m.rule.invite_for_me');
      expect(invite?.conditions).toContainEqual({ kind: 'event_match', key: 'state_key', pattern: alice.userId });
      const mention = g.override.find((r) => r.rule_id === '.m.rule.is_user_mention');
      expect(mention?.conditions).toEqual([{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: alice.userId }]);
      expect(g.content).toEqual([
        {
          rule_id: '.m.rule.contains_user_name',
          default: true,
          enabled: true,
          pattern: 'alice',
          actions: ['notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }],
        },
      ]);
      expect(g.room).toEqual([]);
      expect(g.sender).toEqual([]);
      expect(g.underride.map((r) => r.rule_id)).toEqual(['.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted']);
    }
    expect((await ruleset(alice)).override[0]?.rule_id).toBe('.m.rule.master');
  });

  it('GET one rule, one kind, its enabled and its actions', async () => {
    const rule = await api(t, 'GET', rulePath('underride', '.m.rule.message'), { token: alice.accessToken });
    expect(rule.status).toBe(200);
    expect(rule.body).toEqual({
      rule_id: '.m.rule.message',
      default: true,
      enabled: true,
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }],
      actions: ['notify'],
    });
    expect((await api(t, 'GET', rulePath('override', '.m.rule.master', '/enabled'), { token: alice.accessToken })).body).toEqual({ enabled: false });
    expect((await api(t, 'GET', rulePath('underride', '.m.rule.call', '/actions'), { token: alice.accessToken })).body).toEqual({
      actions: ['notify', { set_tweak: 'sound', value: 'ring' }],
    });
    const kind = await api(t, 'GET', `${V3}/global/underride/`, { token: alice.accessToken });
    expect(Array.isArray(kind.body)).toBe(true);
  });

  it('unknown rules are 404 M_NOT_FOUND; unknown kinds 400', async () => {
    const missing = await api(t, 'GET', rulePath('override', 'nope'), { token: alice.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
    // A default rule under the wrong kind does not exist either.
    expect((await api(t, 'GET', rulePath('underride', '.m.rule.master'), { token: alice.accessToken })).status).toBe(404);
    const kind = await api(t, 'GET', rulePath('sideways', 'x'), { token: alice.accessToken });
    expect(kind.status).toBe(400);
    expect(kind.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('needs an access token', async () => {
    expect((await api(t, 'GET', `${V3}/`)).status).toBe(401);
  });
});

describe('own rules', () => {
  it('PUT creates an enabled rule, shown after the master rule and before the defaults, and written to m.push_rules', async () => {
    const res = await api(t, 'PUT', rulePath('content', 'cake'), { token: alice.accessToken, body: { pattern: 'cake*lie', actions: ['notify'] } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    const got = await api(t, 'GET', rulePath('content', 'cake'), { token: alice.accessToken });
    expect(got.body).toEqual({ rule_id: 'cake', default: false, enabled: true, pattern: 'cake*lie', actions: ['notify'] });
    const rs = await ruleset(alice);
    expect(rs.content.map((r) => r.rule_id)).toEqual(['cake', '.m.rule.contains_user_name']);
    const stored = (await accountDataSince(t.server.ctx.database.db, alice.userId, 0)).find((r) => r.type === 'm.push_rules' && r.room_id === '');
    expect((stored?.content as { global: Ruleset }).global.content.map((r) => r.rule_id)).toEqual(['cake', '.m.rule.contains_user_name']);
    // Bob's rules are his own.
    expect((await ruleset(bob)).content.map((r) => r.rule_id)).toEqual(['.m.rule.contains_user_name']);
  });

  it('override rules keep their conditions; a new rule goes first, an updated one keeps its place', async () => {
    const cond = [
      { kind: 'event_match', key: 'content.body', pattern: 'beer' },
      { kind: 'room_member_count', is: '<=10' },
    ];
    expect(
      (
        await api(t, 'PUT', rulePath('override', 'beer'), {
          token: alice.accessToken,
          body: { conditions: cond, actions: ['notify', { set_tweak: 'sound', value: 'beeroclock.wav' }] },
        })
      ).status,
    ).toBe(200);
    expect((await api(t, 'PUT', rulePath('override', 'wine'), { token: alice.accessToken, body: { conditions: [], actions: [] } })).status).toBe(200);
    let ids = (await ruleset(alice)).override.map((r) => r.rule_id);
    expect(ids.slice(0, 3)).toEqual(['.m.rule.master', 'wine', 'beer']);
    expect((await api(t, 'PUT', rulePath('override', 'beer'), { token: alice.accessToken, body: { conditions: cond, actions: ['notify'] } })).status).toBe(200);
    ids = (await ruleset(alice)).override.map((r) => r.rule_id);
    expect(ids.slice(0, 3)).toEqual(['.m.rule.master', 'wine', 'beer']);
    expect((await api(t, 'GET', rulePath('override', 'beer'), { token: alice.accessToken })).body).toMatchObject({ conditions: cond, actions: ['notify'] });
  });

  it('before/after place a rule next to another user rule', async () => {
    const put = (id: string, query = '') => api(t, 'PUT', `${rulePath('underride', id)}${query}`, { token: bob.accessToken, body: { conditions: [], actions: ['notify'] } });
    expect((await put('a')).status).toBe(200);
    expect((await put('b')).status).toBe(200); // b, a
    expect((await put('c', '?before=a')).status).toBe(200); // b, c, a
    expect((await put('d', '?after=b')).status).toBe(200); // b, d, c, a
    expect((await put('e', '?before=b')).status).toBe(200); // e, b, d, c, a
    expect((await put('a', '?before=e')).status).toBe(200); // a, e, b, d, c
    const ids = (await ruleset(bob)).underride.map((r) => r.rule_id);
    expect(ids.slice(0, 5)).toEqual(['a', 'e', 'b', 'd', 'c']);
    expect(ids[5]).toBe('.m.rule.call');
  });

  it('before/after naming a missing rule, or a server-default one, is 400', async () => {
    const missing = await api(t, 'PUT', `${rulePath('underride', 'x')}?before=nothere`, { token: bob.accessToken, body: { conditions: [], actions: [] } });
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_UNKNOWN');
    const dflt = await api(t, 'PUT', `${rulePath('underride', 'x')}?after=.m.rule.message`, { token: bob.accessToken, body: { conditions: [], actions: [] } });
    expect(dflt.status).toBe(400);
    expect((await api(t, 'GET', rulePath('underride', 'x'), { token: bob.accessToken })).status).toBe(404);
  });

  it('room and sender rules are named by the room or user id', async () => {
    const roomRule = '!abc:test.local';
    expect((await api(t, 'PUT', rulePath('room', roomRule), { token: bob.accessToken, body: { actions: [] } })).status).toBe(200);
    expect((await api(t, 'PUT', rulePath('sender', alice.userId), { token: bob.accessToken, body: { actions: ['notify'] } })).status).toBe(200);
    const rs = await ruleset(bob);
    expect(rs.room).toEqual([{ rule_id: roomRule, default: false, enabled: true, actions: [] }]);
    expect(rs.sender).toEqual([{ rule_id: alice.userId, default: false, enabled: true, actions: ['notify'] }]);
  });

  it('refuses reserved and malformed rules', async () => {
    const put = (kind: string, id: string, body: unknown) => api(t, 'PUT', rulePath(kind, id), { token: alice.accessToken, body });
    const cases: [string, string, unknown, number, string][] = [
      ['override', '.m.rule.mine', { conditions: [], actions: [] }, 400, 'M_INVALID_PARAM'],
      ['override', '.m.rule.master', { conditions: [], actions: [] }, 400, 'M_INVALID_PARAM'],
      ['override', 'a/b', { conditions: [], actions: [] }, 400, 'M_INVALID_PARAM'],
      ['override', 'a\\b', { conditions: [], actions: [] }, 400, 'M_INVALID_PARAM'],
      ['override', 'noactions', { conditions: [] }, 400, 'M_MISSING_PARAM'],
      ['override', 'badaction', { conditions: [], actions: ['explode'] }, 400, 'M_INVALID_PARAM'],
      ['override', 'badaction2', { conditions: [], actions: 'notify' }, 400, 'M_INVALID_PARAM'],
      ['override', 'badcond', { conditions: [{ key: 'type' }], actions: [] }, 400, 'M_INVALID_PARAM'],
      ['override', 'badcond2', { conditions: {}, actions: [] }, 400, 'M_INVALID_PARAM'],
      ['content', 'nopattern', { actions: [] }, 400, 'M_MISSING_PARAM'],
      ['content', 'badpattern', { pattern: 5, actions: [] }, 400, 'M_INVALID_PARAM'],
      ['sideways', 'x', { actions: [] }, 400, 'M_INVALID_PARAM'],
      ['override', 'notobject', ['x'], 400, 'M_BAD_JSON'],
    ];
    for (const [kind, id, body, status, errcode] of cases) {
      const res = await put(kind, id, body);
      expect({ kind, id, status: res.status, errcode: res.body.errcode }).toEqual({ kind, id, status, errcode });
    }
    // Legacy actions are accepted.
    expect((await put('override', 'legacy', { conditions: [], actions: ['dont_notify', 'coalesce'] })).status).toBe(200);
    await api(t, 'DELETE', rulePath('override', 'legacy'), { token: alice.accessToken });
  });

  it('DELETE removes an own rule; deleting it again is 404; server-default rules cannot be deleted', async () => {
    expect((await api(t, 'DELETE', rulePath('override', 'wine'), { token: alice.accessToken })).status).toBe(200);
    expect((await api(t, 'GET', rulePath('override', 'wine'), { token: alice.accessToken })).status).toBe(404);
    const again = await api(t, 'DELETE', rulePath('override', 'wine'), { token: alice.accessToken });
    expect(again.status).toBe(404);
    expect(again.body.errcode).toBe('M_NOT_FOUND');
    const dflt = await api(t, 'DELETE', rulePath('override', '.m.rule.master'), { token: alice.accessToken });
    expect(dflt.status).toBe(400);
    expect(dflt.body.errcode).toBe('M_INVALID_PARAM');
    expect((await api(t, 'GET', rulePath('override', '.m.rule.master'), { token: alice.accessToken })).status).toBe(200);
  });
});

describe('enabled and actions', () => {
  it('enables and disables server-default and own rules', async () => {
    expect((await api(t, 'PUT', rulePath('override', '.m.rule.master', '/enabled'), { token: alice.accessToken, body: { enabled: true } })).status).toBe(200);
    expect((await api(t, 'GET', rulePath('override', '.m.rule.master', '/enabled'), { token: alice.accessToken })).body).toEqual({ enabled: true });
    expect((await ruleset(alice)).override[0]).toMatchObject({ rule_id: '.m.rule.master', enabled: true, default: true });
    expect((await api(t, 'PUT', rulePath('override', '.m.rule.master', '/enabled'), { token: alice.accessToken, body: { enabled: false } })).status).toBe(200);
    expect((await api(t, 'GET', rulePath('override', '.m.rule.master', '/enabled'), { token: alice.accessToken })).body).toEqual({ enabled: false });

    expect((await api(t, 'PUT', rulePath('content', 'cake', '/enabled'), { token: alice.accessToken, body: { enabled: false } })).status).toBe(200);
    expect((await api(t, 'GET', rulePath('content', 'cake'), { token: alice.accessToken })).body).toMatchObject({ enabled: false, pattern: 'cake*lie' });
    // Updating the rule keeps it disabled.
    await api(t, 'PUT', rulePath('content', 'cake'), { token: alice.accessToken, body: { pattern: 'cake', actions: [] } });
    expect((await api(t, 'GET', rulePath('content', 'cake', '/enabled'), { token: alice.accessToken })).body).toEqual({ enabled: false });
  });

  it('replaces the actions of server-default and own rules, keeping enabled', async () => {
    const actions = ['notify', { set_tweak: 'sound', value: 'bing' }];
    expect((await api(t, 'PUT', rulePath('underride', '.m.rule.message', '/actions'), { token: alice.accessToken, body: { actions } })).status).toBe(200);
    expect((await api(t, 'GET', rulePath('underride', '.m.rule.message', '/actions'), { token: alice.accessToken })).body).toEqual({ actions });
    await api(t, 'PUT', rulePath('underride', '.m.rule.message', '/enabled'), { token: alice.accessToken, body: { enabled: false } });
    expect((await api(t, 'GET', rulePath('underride', '.m.rule.message'), { token: alice.accessToken })).body).toMatchObject({ enabled: false, actions, default: true });
    await api(t, 'PUT', rulePath('underride', '.m.rule.message', '/enabled'), { token: alice.accessToken, body: { enabled: true } });
    expect((await api(t, 'GET', rulePath('underride', '.m.rule.message'), { token: alice.accessToken })).body).toMatchObject({ enabled: true, actions });
    expect((await api(t, 'PUT', rulePath('content', 'cake', '/actions'), { token: alice.accessToken, body: { actions: ['notify'] } })).status).toBe(200);
    expect((await api(t, 'GET', rulePath('content', 'cake', '/actions'), { token: alice.accessToken })).body).toEqual({ actions: ['notify'] });
  });

  it('errors: unknown rules 404, bad values 400', async () => {
    const unknown = await api(t, 'PUT', rulePath('override', 'ghost', '/enabled'), { token: alice.accessToken, body: { enabled: true } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    const unknownDefault = await api(t, 'PUT', rulePath('override', '.m.rule.ghost', '/actions'), { token: alice.accessToken, body: { actions: [] } });
    expect(unknownDefault.status).toBe(404);
    expect((await api(t, 'GET', rulePath('override', 'ghost', '/actions'), { token: alice.accessToken })).status).toBe(404);
    const notBool = await api(t, 'PUT', rulePath('override', '.m.rule.master', '/enabled'), { token: alice.accessToken, body: { enabled: 'yes' } });
    expect(notBool.status).toBe(400);
    expect(notBool.body.errcode).toBe('M_INVALID_PARAM');
    expect((await api(t, 'PUT', rulePath('override', '.m.rule.master', '/enabled'), { token: alice.accessToken, body: {} })).body.errcode).toBe('M_MISSING_PARAM');
    const badActions = await api(t, 'PUT', rulePath('override', '.m.rule.master', '/actions'), { token: alice.accessToken, body: { actions: [42] } });
    expect(badActions.status).toBe(400);
    expect(badActions.body.errcode).toBe('M_INVALID_PARAM');
    expect((await api(t, 'GET', rulePath('override', '.m.rule.master', '/enabled'), { token: alice.accessToken })).body).toEqual({ enabled: false });
  });

  it('each change wakes the user (m.push_rules reaches their clients)', async () => {
    const woken = t.server.ctx.services.notifier.wait(alice.userId, 5000);
    await api(t, 'PUT', rulePath('override', '.m.rule.suppress_notices', '/enabled'), { token: alice.accessToken, body: { enabled: true } });
    expect(await woken).toBe(true);
  });
});

describe('rules change what notifies', () => {
  it('a room rule with no actions mutes the room; deleting it brings notifications back', async () => {
    const roomId = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat' } })).body.room_id as string;
    await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken, body: {} });
    const carol = await createUser(t, 'carol');
    await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: carol.accessToken, body: {} });
    const push = t.server.ctx.services.push;
    const send = (txn: string) =>
      api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txn}`, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'hi' } });

    expect((await api(t, 'PUT', rulePath('room', roomId), { token: bob.accessToken, body: { actions: [] } })).status).toBe(200);
    await send('m1');
    expect((await push.unreadCounts(bob.userId, roomId)).notification_count).toBe(0);
    expect((await push.unreadCounts(carol.userId, roomId)).notification_count).toBe(1);
    expect((await api(t, 'DELETE', rulePath('room', roomId), { token: bob.accessToken })).status).toBe(200);
    await send('m2');
    expect((await push.unreadCounts(bob.userId, roomId)).notification_count).toBe(1);
  });
});
