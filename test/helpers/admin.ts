/**
 * Checks every /_synapse/admin test file makes of its routes: each refuses a
 * request without a token (401 M_MISSING_TOKEN) and one from a signed-in
 * user who is not a server admin (403 M_FORBIDDEN, Synapse's message).
 */
import { expect, it } from 'vitest';
import type { TestServer } from './server.js';
import { api, type TestUser } from './users.js';

/** [method, path, body?] */
export type AdminEndpoint = [string, string, unknown?];

/**
 * Two `it.each` over `endpoints`: no token, then `nonAdmin`'s token; `after`
 * runs after each refusal (to check that nothing was written).
 */
export function itRequiresAdmin(t: TestServer, nonAdmin: TestUser, endpoints: AdminEndpoint[], after?: () => Promise<void>): void {
  it.each(endpoints)('%s %s without a token is 401 M_MISSING_TOKEN', async (method, path, body) => {
    const res = await api(t, method, path, { body });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_MISSING_TOKEN');
    await after?.();
  });
  it.each(endpoints)('%s %s as a non-admin is 403 M_FORBIDDEN', async (method, path, body) => {
    const res = await api(t, method, path, { token: nonAdmin.accessToken, body });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ errcode: 'M_FORBIDDEN', error: 'You are not a server admin' });
    await after?.();
  });
}

/** Whether a token is accepted: whois on oneself needs only a valid token. */
export async function tokenWorks(t: TestServer, user: TestUser): Promise<boolean> {
  const res = await api(t, 'GET', `/_synapse/admin/v1/whois/${encodeURIComponent(user.userId)}`, { token: user.accessToken });
  if (res.status === 401) {
    expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
    return false;
  }
  expect(res.status).toBe(200);
  return true;
}
