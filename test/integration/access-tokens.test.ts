/**
 * How requests are authenticated: header or query token, the errors for a
 * missing, malformed or unknown one, and account flags that take effect on
 * the very next request (locked, deactivated by an admin).
 */
import { describe, expect, it } from 'vitest';
import { useTestServer } from '../helpers/rooms.js';
import { api, createUser } from '../helpers/users.js';

const t = useTestServer();

describe('access tokens', () => {
  it('accepts the token in the Authorization header or the access_token query parameter', async () => {
    const u = await createUser(t, 'tok1');
    expect((await api(t, 'GET', '/_matrix/client/v3/account/whoami', { token: u.accessToken })).body.user_id).toBe(u.userId);
    const q = await api(t, 'GET', `/_matrix/client/v3/account/whoami?access_token=${encodeURIComponent(u.accessToken)}`);
    expect(q.body.user_id).toBe(u.userId);
  });

  it('401 M_MISSING_TOKEN without one, M_UNKNOWN_TOKEN for a wrong one', async () => {
    const none = await api(t, 'GET', '/_matrix/client/v3/account/whoami');
    expect(none.status).toBe(401);
    expect(none.body.errcode).toBe('M_MISSING_TOKEN');
    const bad = await api(t, 'GET', '/_matrix/client/v3/account/whoami', { token: 'syt_bm9ib2R5_nottherealtokenatall_000000' });
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const malformed = await api(t, 'GET', '/_matrix/client/v3/account/whoami', { headers: { authorization: 'Basic abc' } });
    expect(malformed.status).toBe(401);
    expect(malformed.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('a locked account gets 401 M_USER_LOCKED with soft_logout on its next request', async () => {
    const admin = await createUser(t, 'tokadmin', { admin: true });
    const u = await createUser(t, 'tok2');
    // Use the token once so it is cached; locking must still apply at once.
    expect((await api(t, 'GET', '/_matrix/client/v3/account/whoami', { token: u.accessToken })).status).toBe(200);
    const lock = await api(t, 'PUT', `/_synapse/admin/v2/users/${encodeURIComponent(u.userId)}`, { token: admin.accessToken, body: { locked: true } });
    expect(lock.status).toBe(200);
    const res = await api(t, 'GET', '/_matrix/client/v3/account/whoami', { token: u.accessToken });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ errcode: 'M_USER_LOCKED', soft_logout: true });
  });

  it('a token never appears in the database in clear', async () => {
    const u = await createUser(t, 'tok3');
    const rows = await t.server.ctx.database.db.selectFrom('access_tokens').select('token_hash').where('user_id', '=', u.userId).execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.token_hash).not.toContain(u.accessToken);
    expect(u.accessToken).toMatch(/^syt_dG9rMw_[A-Za-z0-9]{20}_[0-9A-Za-z]{6}$/);
  });
});
