/**
 * OpenID tokens: a user asks for one (POST /user/{userId}/openid/request_token)
 * and a third party learns whose it is from the federation API's userinfo,
 * without a signature; unknown, expired and other users' tokens are refused
 * with Synapse's errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenIdService } from '../../src/services/openid.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

let t: TestServer;
let alice: TestUser;
let bob: TestUser;
const enc = encodeURIComponent;

beforeAll(async () => {
  t = await startTestServer();
  alice = await createUser(t, 'alice');
  bob = await createUser(t, 'bob');
});
afterAll(async () => t?.close());

describe('OpenID', () => {
  it('hands a user a token that userinfo maps back to them', async () => {
    const res = await api(t, 'POST', `/_matrix/client/v3/user/${enc(alice.userId)}/openid/request_token`, { token: alice.accessToken, body: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', matrix_server_name: 'test.local', expires_in: 3600 });
    const token = res.body.access_token as string;
    expect(token.length).toBeGreaterThanOrEqual(20);
    const info = await api(t, 'GET', `/_matrix/federation/v1/openid/userinfo?access_token=${enc(token)}`);
    expect(info.status).toBe(200);
    expect(info.body).toEqual({ sub: alice.userId });
    // r0 too, and each request a new token.
    const again = await api(t, 'POST', `/_matrix/client/r0/user/${enc(alice.userId)}/openid/request_token`, { token: alice.accessToken, body: {} });
    expect(again.status).toBe(200);
    expect(again.body.access_token).not.toBe(token);
  });

  it('refuses tokens for someone else, unknown tokens and a missing one', async () => {
    const other = await api(t, 'POST', `/_matrix/client/v3/user/${enc(bob.userId)}/openid/request_token`, { token: alice.accessToken, body: {} });
    expect(other.status).toBe(403);
    expect(other.body.errcode).toBe('M_FORBIDDEN');
    const noAuth = await api(t, 'POST', `/_matrix/client/v3/user/${enc(alice.userId)}/openid/request_token`, { body: {} });
    expect(noAuth.status).toBe(401);
    const unknown = await api(t, 'GET', '/_matrix/federation/v1/openid/userinfo?access_token=nope');
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual({ errcode: 'M_UNKNOWN_TOKEN', error: 'Access Token unknown or expired' });
    const missing = await api(t, 'GET', '/_matrix/federation/v1/openid/userinfo');
    expect(missing.status).toBe(401);
    expect(missing.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('an expired token is refused', async () => {
    const res = await api(t, 'POST', `/_matrix/client/v3/user/${enc(bob.userId)}/openid/request_token`, { token: bob.accessToken, body: {} });
    const token = res.body.access_token as string;
    // The same database read with a clock past the token's hour.
    const later = new OpenIdService(t.server.ctx.database.db, 'test.local', () => Date.now() + 3601_000);
    await expect(later.userInfo(token)).rejects.toMatchObject({ errcode: 'M_UNKNOWN_TOKEN' });
    expect(await t.server.ctx.services.openId.userInfo(token)).toEqual({ sub: bob.userId });
  });
});
