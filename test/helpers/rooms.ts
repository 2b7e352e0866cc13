/**
 * Room fixtures over HTTP, shared by the rooms and sync tests: users for a
 * server, and the calls most tests start from (create a room, join, send,
 * set state, read /messages and /sync). Each call checks its status, so a
 * test reads as the steps it takes.
 *
 * `roomHelpers(() => t)` binds the calls to the file's server, read when a
 * call runs (the server starts in beforeAll). Who acts is a TestUser or an
 * access token. `useServerWithUsers` sets up a file's server and users.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { type TestServer, type TestServerOptions, startTestServer } from './server.js';
import { api, createUser, type TestUser } from './users.js';

export type Actor = TestUser | string;

type Json = Record<string, any>;

/** An event as the client API serves it. */
export interface ClientEv {
  event_id: string;
  type: string;
  sender: string;
  content: Record<string, any>;
  state_key?: string;
  redacts?: string;
  origin_server_ts: number;
  room_id?: string;
  unsigned: Record<string, any>;
}

export interface MessagesPage {
  chunk: ClientEv[];
  start: string;
  end?: string;
  state?: ClientEv[];
}

const enc = encodeURIComponent;

function tokenOf(as: Actor): string {
  return typeof as === 'string' ? as : as.accessToken;
}

/** Creates these users (each with a signed-in device), in order. */
export async function createUsers(t: TestServer, ...localparts: string[]): Promise<TestUser[]> {
  const out: TestUser[] = [];
  for (const l of localparts) out.push(await createUser(t, l));
  return out;
}

/** Options for a file's server: the test server's, and which of its users are server admins. */
export interface UseServerOptions extends TestServerOptions {
  admins?: string[];
}

/**
 * The file's (or the describe block's) server, started in beforeAll and
 * closed in afterAll. The object returned is filled in when beforeAll runs,
 * so it can be bound to a const at the top of the file. `opts` may be a
 * function, called in beforeAll (for settings known only then).
 */
export function useTestServer(opts: TestServerOptions | (() => TestServerOptions | Promise<TestServerOptions>) = {}): TestServer {
  return useServerWith(opts).t;
}

/** `useServerWith` with the default settings. */
export function useServerWithUsers<const N extends string>(...localparts: N[]): { t: TestServer } & Record<N, TestUser> {
  return useServerWith({}, ...localparts);
}

/**
 * Starts a server with these users (beforeAll; closed in afterAll). What it
 * returns is filled in when beforeAll ran, each field an object that stays
 * the same, so it can be destructured at once: `t` is the server, `alice`
 * the user made for 'alice' (an admin if listed in `opts.admins`).
 */
export function useServerWith<const N extends string>(
  opts: UseServerOptions | (() => UseServerOptions | Promise<UseServerOptions>),
  ...localparts: N[]
): { t: TestServer } & Record<N, TestUser> {
  const env = { t: {} as TestServer } as { t: TestServer } & Record<N, TestUser>;
  for (const l of localparts) Object.assign(env, { [l]: {} });
  beforeAll(async () => {
    const { admins = [], ...serverOpts } = typeof opts === 'function' ? await opts() : opts;
    Object.assign(env.t, await startTestServer(serverOpts));
    for (const l of localparts) Object.assign(env[l], await createUser(env.t, l, { admin: admins.includes(l) }));
  });
  afterAll(async () => {
    await env.t.close?.();
  });
  return env;
}

/** Another signed-in device of a user: the same user with a new access token and device id. */
export async function signIn(t: TestServer, user: TestUser): Promise<TestUser> {
  const session = await t.server.ctx.services.auth.createSession(t.server.ctx.database.db, { userId: user.userId, displayName: 'another device' });
  return { ...user, accessToken: session.access_token, deviceId: session.device_id };
}

/** A plain text message's content. */
export function text(body: string, extra: object = {}): Record<string, unknown> {
  return { msgtype: 'm.text', body, ...extra };
}

let txnCounter = 0;

/** A transaction id not used before in this test file. */
export function nextTxnId(prefix = 'h'): string {
  return `${prefix}${++txnCounter}`;
}

export function roomHelpers(server: () => TestServer) {
  const call = (as: Actor | undefined, method: string, path: string, body?: unknown) => api(server(), method, path, { token: as === undefined ? undefined : tokenOf(as), body });

  const room = (roomId: string) => `/_matrix/client/v3/rooms/${enc(roomId)}`;

  return {
    /** POST /createRoom; the new room's id. */
    async createRoom(as: Actor, body: object = {}): Promise<string> {
      const res = await call(as, 'POST', '/_matrix/client/v3/createRoom', body);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.room_id as string;
    },

    /** PUT /send/{type}/{txnId} as it answers (txn id fresh unless given). */
    sendRaw(as: Actor, roomId: string, content: object, type = 'm.room.message', txnId = nextTxnId()) {
      return call(as, 'PUT', `${room(roomId)}/send/${enc(type)}/${enc(txnId)}`, content);
    },

    /** PUT /send/{type}/{txnId}; the event id. */
    async send(as: Actor, roomId: string, content: object, type = 'm.room.message', txnId = nextTxnId()): Promise<string> {
      const res = await call(as, 'PUT', `${room(roomId)}/send/${enc(type)}/${enc(txnId)}`, content);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.event_id as string;
    },

    /** PUT /state/{type}/{stateKey}; the event id. */
    async setState(as: Actor, roomId: string, type: string, content: object, stateKey = ''): Promise<string> {
      const res = await call(as, 'PUT', `${room(roomId)}/state/${enc(type)}/${enc(stateKey)}`, content);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.event_id as string;
    },

    /** PUT /redact/{eventId}/{txnId} as it answers. */
    redact(as: Actor, roomId: string, eventId: string, txnId = nextTxnId('r'), body: unknown = {}) {
      return call(as, 'PUT', `${room(roomId)}/redact/${enc(eventId)}/${enc(txnId)}`, body);
    },

    async join(as: Actor, roomId: string): Promise<void> {
      const res = await call(as, 'POST', `${room(roomId)}/join`, {});
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    },

    async leave(as: Actor, roomId: string): Promise<void> {
      const res = await call(as, 'POST', `${room(roomId)}/leave`, {});
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    },

    /** POST /invite, /kick, /ban or /unban of another user. */
    async act(as: Actor, roomId: string, action: 'invite' | 'kick' | 'ban' | 'unban', target: TestUser): Promise<void> {
      const res = await call(as, 'POST', `${room(roomId)}/${action}`, { user_id: target.userId });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    },

    /** GET /messages with these query parameters, as it answers. */
    async messages(as: Actor, roomId: string, query: Record<string, string | number>): Promise<{ status: number; body: MessagesPage & Json }> {
      const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
      const res = await call(as, 'GET', `${room(roomId)}/messages?${qs}`);
      return { status: res.status, body: res.body as MessagesPage & Json };
    },

    /** GET /sync (objects in params are sent as JSON); throws unless 200. */
    async sync(as: Actor, params: Record<string, string | number | boolean | object> = {}): Promise<Json> {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) q.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
      const res = await call(as, 'GET', `/_matrix/client/v3/sync?${q}`);
      if (res.status !== 200) throw new Error(`sync answered ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
  };
}
