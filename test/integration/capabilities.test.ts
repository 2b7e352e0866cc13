/** GET /capabilities: what the configuration allows, for signed-in users and guests. */
import { describe, expect, it } from 'vitest';
import { ROOM_VERSIONS } from '../../src/core/room-versions.js';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest } from '../helpers/sessions.js';
import { startTestServer } from '../helpers/server.js';
import { api, createUser } from '../helpers/users.js';

const t = useTestServer();

const allVersions = Object.fromEntries([...ROOM_VERSIONS.keys()].map((v) => [v, 'stable']));

describe('GET /capabilities', () => {
  it('describes the default configuration, on r0 and v3', async () => {
    const u = await createUser(t, 'alice');
    for (const v of ['r0', 'v3']) {
      const res = await api(t, 'GET', `/_matrix/client/${v}/capabilities`, { token: u.accessToken });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        capabilities: {
          'm.change_password': { enabled: true },
          'm.room_versions': { default: '11', available: allVersions },
          'm.set_displayname': { enabled: true },
          'm.set_avatar_url': { enabled: true },
          'm.profile_fields': { enabled: true, allowed: ['displayname', 'avatar_url'] },
          'm.3pid_changes': { enabled: false },
          'm.get_login_token': { enabled: false },
        },
      });
    }
    expect(Object.keys(allVersions)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']);
  });

  it('needs a token; guests may ask', async () => {
    const none = await api(t, 'GET', '/_matrix/client/v3/capabilities');
    expect(none.status).toBe(401);
    expect(none.body.errcode).toBe('M_MISSING_TOKEN');
    const bad = await api(t, 'GET', '/_matrix/client/v3/capabilities', { token: 'syt_nope' });
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const g = await createGuest(t);
    expect((await api(t, 'GET', '/_matrix/client/v3/capabilities', { token: g.accessToken })).status).toBe(200);
  });

  it('follows the configuration', async () => {
    const s = await startTestServer({
      yaml: { password_config: { enabled: false }, enable_set_displayname: false, enable_set_avatar_url: false, default_room_version: '10' },
    });
    try {
      const u = await createUser(s, 'bob');
      const res = await api(s, 'GET', '/_matrix/client/v3/capabilities', { token: u.accessToken });
      const caps = res.body.capabilities as Record<string, Record<string, unknown>>;
      expect(caps['m.change_password']).toEqual({ enabled: false });
      expect(caps['m.room_versions']?.default).toBe('10');
      expect(caps['m.set_displayname']).toEqual({ enabled: false });
      expect(caps['m.set_avatar_url']).toEqual({ enabled: false });
      expect(caps['m.profile_fields']).toEqual({ enabled: false, allowed: [] });
    } finally {
      await s.close();
    }
  });
});
