/**
 * Fixtures for the session and account tests: guest accounts, password
 * logins, UIA-completing bodies, and a way to wait for what AuthService
 * records in the background.
 */
import { api, type TestUser } from './users.js';
import type { TestServer } from './server.js';

let guestSeq = 0;

/** A guest account (numeric localpart, no password) with a signed-in device, as guest registration makes them. */
export async function createGuest(t: TestServer): Promise<{ userId: string; accessToken: string; deviceId: string }> {
  const { accounts, auth } = t.server.ctx.services;
  const db = t.server.ctx.database.db;
  const localpart = `${Date.now()}${guestSeq++}`;
  if (!(await accounts.createUser(db, { localpart, isGuest: true }))) throw new Error('guest exists');
  const userId = accounts.userId(localpart);
  const session = await auth.createSession(db, { userId });
  return { userId, accessToken: session.access_token, deviceId: session.device_id };
}

/** POST /login with m.login.password for a localpart or user id. */
export function login(t: TestServer, user: string, password: string, extra: Record<string, unknown> = {}) {
  return api(t, 'POST', '/_matrix/client/v3/login', {
    body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password, ...extra },
  });
}

/** The UIA `auth` dict for the password stage. */
export function passwordAuth(u: TestUser, session?: string, password = u.password): Record<string, unknown> {
  return { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.userId }, password, ...(session ? { session } : {}) };
}

/** Polls until `check` returns a value (background writes land a moment after the response). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
