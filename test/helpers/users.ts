/**
 * Test fixtures for accounts: a user made through the accounts service
 * (the same code registration uses) with a signed-in device.
 */
import { type Agent, fetch as undiciFetch } from 'undici';
import type { TestServer } from './server.js';
import { testCaAgent } from './test-ca.js';

/** For servers on a TLS listener (the federation tests): a client that trusts the test CA. */
let testCaClient: Agent | undefined;
async function fetchJsonApi(url: string, init: { method: string; headers: Record<string, string>; body: string | undefined }): Promise<Response> {
  if (!url.startsWith('https:')) return fetch(url, init);
  testCaClient ??= testCaAgent();
  return (await undiciFetch(url, { ...init, dispatcher: testCaClient })) as unknown as Response;
}

export interface TestUser {
  userId: string;
  localpart: string;
  password: string;
  accessToken: string;
  deviceId: string;
}

export async function createUser(t: TestServer, localpart: string, opts: { password?: string; admin?: boolean } = {}): Promise<TestUser> {
  const { accounts, auth } = t.server.ctx.services;
  const db = t.server.ctx.database.db;
  const password = opts.password ?? `pw-${localpart}-secret`;
  const created = await accounts.createUser(db, { localpart, password, admin: opts.admin ?? false });
  if (!created) throw new Error(`user ${localpart} exists`);
  const userId = accounts.userId(localpart);
  const session = await auth.createSession(db, { userId, displayName: 'test device' });
  return { userId, localpart, password, accessToken: session.access_token, deviceId: session.device_id };
}

/** fetch with a JSON body and an access token; returns status and parsed body. */
export async function api(
  t: TestServer,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetchJsonApi(`${t.url}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body, headers: res.headers };
}
