/**
 * Profiles: GET /profile/{userId}, GET/PUT/DELETE .../displayname and
 * .../avatar_url, the limits, who may write, and the config switches.
 */
import { describe, expect, it } from 'vitest';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest } from '../helpers/sessions.js';
import { startTestServer } from '../helpers/server.js';
import { api, createUser } from '../helpers/users.js';

const t = useTestServer();

const db = () => t.server.ctx.database.db;
const p = (userId: string, field?: string, v = 'v3') => `/_matrix/client/${v}/profile/${encodeURIComponent(userId)}${field ? `/${field}` : ''}`;

describe('reading profiles', () => {
  it('shows the display name (the localpart at creation) without a token, on r0 and v3', async () => {
    const u = await createUser(t, 'alice');
    for (const v of ['r0', 'v3']) {
      const res = await api(t, 'GET', p(u.userId, undefined, v));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ displayname: 'alice' });
    }
    expect((await api(t, 'GET', p(u.userId, 'displayname'))).body).toEqual({ displayname: 'alice' });
    const avatar = await api(t, 'GET', p(u.userId, 'avatar_url'));
    expect(avatar.status).toBe(404);
    expect(avatar.body.errcode).toBe('M_NOT_FOUND');
  });

  it('answers 404 for unknown users, 502 for users of a server it cannot reach, 400 for malformed ids', async () => {
    for (const field of [undefined, 'displayname', 'avatar_url']) {
      const res = await api(t, 'GET', p('@nobody:test.local', field));
      expect(res.status).toBe(404);
      expect(res.body.errcode).toBe('M_NOT_FOUND');
      // Remote profiles are asked of their server (federation-queries.test.ts); this one is on the loopback, which ip_range_blacklist refuses.
      const far = await api(t, 'GET', p('@someone:localhost:1', field));
      expect(far.status).toBe(502);
      expect(far.body).toEqual({ errcode: 'M_UNKNOWN', error: 'Failed to fetch profile' });
    }
    for (const id of ['alice', '@alice', 'not an id', '@a\u0000:test.local']) {
      const res = await api(t, 'GET', p(id));
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_INVALID_PARAM');
    }
  });

  it('needs a token with require_auth_for_profile_requests (guests may read)', async () => {
    const s = await startTestServer({ yaml: { require_auth_for_profile_requests: true } });
    try {
      const u = await createUser(s, 'bob');
      const anon = await api(s, 'GET', p(u.userId));
      expect(anon.status).toBe(401);
      expect(anon.body.errcode).toBe('M_MISSING_TOKEN');
      expect((await api(s, 'GET', p(u.userId, 'displayname'))).status).toBe(401);
      expect((await api(s, 'GET', p(u.userId), { token: u.accessToken })).body).toEqual({ displayname: 'bob' });
      const g = await createGuest(s);
      expect((await api(s, 'GET', p(u.userId, 'displayname'), { token: g.accessToken })).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('changing one’s profile', () => {
  it('sets, trims and clears the display name and the avatar URL', async () => {
    const u = await createUser(t, 'carol');
    const set = await api(t, 'PUT', p(u.userId, 'displayname'), { token: u.accessToken, body: { displayname: '  Carol C.  ' } });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({});
    const av = await api(t, 'PUT', p(u.userId, 'avatar_url', 'r0'), { token: u.accessToken, body: { avatar_url: 'mxc://test.local/abcdef' } });
    expect(av.status).toBe(200);
    expect((await api(t, 'GET', p(u.userId))).body).toEqual({ displayname: 'Carol C.', avatar_url: 'mxc://test.local/abcdef' });
    expect(await db().selectFrom('profiles').select(['displayname', 'avatar_url']).where('user_id', '=', u.userId).executeTakeFirst()).toEqual({
      displayname: 'Carol C.',
      avatar_url: 'mxc://test.local/abcdef',
    });

    // An empty string clears; DELETE clears too.
    expect((await api(t, 'PUT', p(u.userId, 'displayname'), { token: u.accessToken, body: { displayname: '' } })).status).toBe(200);
    expect((await api(t, 'GET', p(u.userId, 'displayname'))).status).toBe(404);
    expect((await api(t, 'GET', p(u.userId))).body).toEqual({ avatar_url: 'mxc://test.local/abcdef' });
    expect((await api(t, 'DELETE', p(u.userId, 'avatar_url'), { token: u.accessToken })).status).toBe(200);
    const none = await api(t, 'GET', p(u.userId));
    expect(none.status).toBe(404);
    expect(none.body.errcode).toBe('M_NOT_FOUND');
  });

  it('applies Synapse’s limits and types', async () => {
    const u = await createUser(t, 'dave');
    const put = (field: string, body: unknown) => api(t, 'PUT', p(u.userId, field), { token: u.accessToken, body });
    expect((await put('displayname', { displayname: 'd'.repeat(256) })).status).toBe(200);
    // Code points, not UTF-16 units: 256 emoji fit.
    expect((await put('displayname', { displayname: '😀'.repeat(256) })).status).toBe(200);
    const cases: [string, unknown, string][] = [
      ['displayname', { displayname: 'd'.repeat(257) }, 'M_INVALID_PARAM'],
      ['avatar_url', { avatar_url: `mxc://test.local/${'a'.repeat(1000)}` }, 'M_INVALID_PARAM'],
      ['displayname', { displayname: 42 }, 'M_INVALID_PARAM'],
      ['displayname', { displayname: null }, 'M_INVALID_PARAM'],
      ['avatar_url', { avatar_url: { url: 'x' } }, 'M_INVALID_PARAM'],
      ['displayname', { avatar_url: 'mxc://x/y' }, 'M_MISSING_PARAM'],
      ['avatar_url', [], 'M_BAD_JSON'],
      ['displayname', { displayname: 'a\u0000b' }, 'M_INVALID_PARAM'],
    ];
    for (const [field, body, errcode] of cases) {
      const res = await put(field, body);
      expect({ field, body, status: res.status, errcode: res.body.errcode }).toEqual({ field, body, status: 400, errcode });
    }
    expect((await api(t, 'GET', p(u.userId, 'displayname'))).body).toEqual({ displayname: '😀'.repeat(256) });
  });

  it('refuses changes to someone else’s profile (403), but lets a server admin', async () => {
    const u = await createUser(t, 'erin');
    const v = await createUser(t, 'frank');
    for (const field of ['displayname', 'avatar_url']) {
      const res = await api(t, 'PUT', p(v.userId, field), { token: u.accessToken, body: { [field]: 'mxc://test.local/x' } });
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
      expect((await api(t, 'DELETE', p(v.userId, field), { token: u.accessToken })).status).toBe(403);
    }
    expect((await api(t, 'GET', p(v.userId))).body).toEqual({ displayname: 'frank' });
    const admin = await createUser(t, 'root', { admin: true });
    expect((await api(t, 'PUT', p(v.userId, 'displayname'), { token: admin.accessToken, body: { displayname: 'Frank F.' } })).status).toBe(200);
    expect((await api(t, 'GET', p(v.userId, 'displayname'))).body).toEqual({ displayname: 'Frank F.' });
    const ghost = await api(t, 'PUT', p('@ghost:test.local', 'displayname'), { token: admin.accessToken, body: { displayname: 'boo' } });
    expect(ghost.status).toBe(404);
    const remote = await api(t, 'PUT', p('@x:elsewhere.example', 'displayname'), { token: admin.accessToken, body: { displayname: 'boo' } });
    expect(remote.status).toBe(400);
  });

  it('needs a token; guests may change only their display name', async () => {
    const u = await createUser(t, 'grace');
    const anon = await api(t, 'PUT', p(u.userId, 'displayname'), { body: { displayname: 'x' } });
    expect(anon.status).toBe(401);
    expect(anon.body.errcode).toBe('M_MISSING_TOKEN');
    const g = await createGuest(t);
    expect((await api(t, 'PUT', p(g.userId, 'displayname'), { token: g.accessToken, body: { displayname: 'Guest' } })).status).toBe(200);
    expect((await api(t, 'GET', p(g.userId, 'displayname'))).body).toEqual({ displayname: 'Guest' });
    const av = await api(t, 'PUT', p(g.userId, 'avatar_url'), { token: g.accessToken, body: { avatar_url: 'mxc://test.local/g' } });
    expect(av.status).toBe(403);
    expect(av.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });
});

describe('enable_set_displayname / enable_set_avatar_url: false', () => {
  it('freezes a field once it has a value', async () => {
    const s = await startTestServer({ yaml: { enable_set_displayname: false, enable_set_avatar_url: false } });
    try {
      const u = await createUser(s, 'heidi');
      const res = await api(s, 'PUT', p(u.userId, 'displayname'), { token: u.accessToken, body: { displayname: 'New name' } });
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
      // No avatar yet: the first one may be set, then it is fixed.
      expect((await api(s, 'PUT', p(u.userId, 'avatar_url'), { token: u.accessToken, body: { avatar_url: 'mxc://test.local/a' } })).status).toBe(200);
      expect((await api(s, 'PUT', p(u.userId, 'avatar_url'), { token: u.accessToken, body: { avatar_url: 'mxc://test.local/b' } })).status).toBe(403);
      expect((await api(s, 'GET', p(u.userId))).body).toEqual({ displayname: 'heidi', avatar_url: 'mxc://test.local/a' });
    } finally {
      await s.close();
    }
  });
});
