/**
 * A corpus of hostile request bodies against the main client endpoints:
 * lone UTF-16 surrogates (in values and in keys, high and low halves, either
 * case of escape), nesting far past any real event, bodies over the size
 * limit, bytes that are not UTF-8, and a wrong type in every field of a
 * valid body. Every answer must be a Matrix error (an `M_*` errcode) or a
 * success, never a 5xx; a valid surrogate pair must still pass. Where
 * Synapse has a precise answer it is asserted: JSON that is not an object
 * (`null` included) is 400 M_BAD_JSON, text that is not JSON 400 M_NOT_JSON,
 * no body as the route's servlet takes it (see Route.empty), and the
 * content checks of Synapse's EventValidator per field (Route.wrongType).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_DEPTH } from '../../src/http/json-body.js';
import { nextTxnId, roomHelpers } from '../helpers/rooms.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, unknown>;

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

let t: TestServer;
let alice: TestUser;
let bob: TestUser;
/** Changes its password (in the pair test), so nobody else signs in as it. */
let pat: TestUser;
let roomId: string;
/** Where the power levels are rewritten, so alice keeps hers in `roomId`. */
let plRoomId: string;
let eventId: string;
let regCount = 0;

const LOOSE = { per_second: 1000, burst_count: 1000 };

beforeAll(async () => {
  t = await startTestServer({
    yaml: {
      enable_registration: true,
      enable_registration_without_verification: true,
      rc_joins: { local: LOOSE, remote: LOOSE },
      rc_invites: { per_room: LOOSE, per_user: LOOSE, per_issuer: LOOSE },
      rc_3pid_validation: LOOSE,
    },
  });
  alice = await createUser(t, 'alice');
  bob = await createUser(t, 'bob');
  pat = await createUser(t, 'pat');
  const rooms = roomHelpers(() => t);
  roomId = await rooms.createRoom(alice, { preset: 'public_chat' });
  plRoomId = await rooms.createRoom(alice);
  await rooms.join(bob, roomId);
  eventId = await rooms.send(alice, roomId, { msgtype: 'm.text', body: 'to be redacted' });
});
afterAll(async () => {
  await t?.close();
});

interface Route {
  name: string;
  method: 'POST' | 'PUT';
  path: () => string;
  /** A body the route accepts (made anew for each request). */
  body: () => Json;
  /** Who calls: alice unless said (null: no token). */
  as?: () => TestUser | null;
  /** A string field where a valid surrogate pair (😀 escaped) must be accepted. */
  pairAt: string[];
  /** Run before the request whose body carries the valid pair. */
  beforePair?: () => Promise<void>;
  /**
   * How the route takes no body, as Synapse's servlet: `required` (the
   * default) answers 400 M_NOT_JSON; `allowEmpty` (the membership routes)
   * takes no body, and `null`, as `{}`; `emptyIsObject` (device deletion)
   * takes no body as `{}` but refuses `null`.
   */
  empty?: 'required' | 'allowEmpty' | 'emptyIsObject';
  /** Synapse also takes a bare `true`/`false` as the whole body. */
  bareBoolean?: boolean;
  /**
   * What Synapse answers when the field at `path` (joined with '.') holds
   * `value` instead: a status and errcode; undefined where only "never a
   * 5xx" is asserted.
   */
  wrongType?: (path: string, value: unknown) => Expected | undefined;
}

interface Expected {
  status: number;
  errcode?: string;
}

const OK: Expected = { status: 200 };
const notString = (v: unknown) => (typeof v === 'string' ? undefined : { status: 400, errcode: 'M_UNKNOWN' });
const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER;

const room = () => `${V3}/rooms/${enc(roomId)}`;
const me = () => `${V3}/user/${enc(alice.userId)}`;

const ROUTES: Route[] = [
  {
    name: 'register',
    method: 'POST',
    path: () => `${V3}/register`,
    body: () => ({ username: `reg${++regCount}`, password: 'a-long-password-1', auth: { type: 'm.login.dummy' }, initial_device_display_name: 'phone', inhibit_login: false }),
    as: () => null,
    pairAt: ['initial_device_display_name'],
  },
  {
    name: 'login',
    method: 'POST',
    path: () => `${V3}/login`,
    body: () => ({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: bob.password, initial_device_display_name: 'laptop' }),
    as: () => null,
    pairAt: ['initial_device_display_name'],
    // `null` is "not given", as Synapse.
    wrongType: (path, v) => (path === 'initial_device_display_name' && v === null ? OK : undefined),
  },
  {
    name: 'createRoom',
    method: 'POST',
    path: () => `${V3}/createRoom`,
    body: () => ({
      name: 'Room',
      topic: 'About',
      preset: 'private_chat',
      visibility: 'private',
      invite: [bob.userId],
      is_direct: false,
      creation_content: { 'm.federate': true },
      initial_state: [{ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'can_join' } }],
      power_level_content_override: { users_default: 0 },
    }),
    pairAt: ['name'],
    // Synapse checks no value inside creation_content; the override's levels must be integers.
    wrongType: (path, v) => {
      // Numbers canonical JSON cannot hold are M_BAD_JSON everywhere in an event.
      if (path === 'creation_content.m.federate') return typeof v === 'number' && !isInt(v) ? { status: 400, errcode: 'M_BAD_JSON' } : OK;
      if (path === 'power_level_content_override.users_default') return isInt(v) ? OK : { status: 400, errcode: 'M_BAD_JSON' };
      return undefined;
    },
  },
  {
    name: 'send',
    method: 'PUT',
    path: () => `${room()}/send/m.room.message/${nextTxnId('s')}`,
    body: () => ({ msgtype: 'm.text', body: 'hello', 'm.mentions': { user_ids: [bob.userId] } }),
    pairAt: ['body'],
    wrongType: (path, v) => {
      if (path === 'msgtype' || path === 'body') return notString(v);
      if (path === 'm.mentions') return { status: 400, errcode: 'M_BAD_JSON' };
      if (path === 'm.mentions.user_ids') return { status: 400, errcode: 'M_BAD_JSON' };
      if (path === 'm.mentions.user_ids.0') return typeof v === 'string' ? OK : { status: 400, errcode: 'M_BAD_JSON' };
      return undefined;
    },
  },
  {
    name: 'state',
    method: 'PUT',
    path: () => `${room()}/state/m.room.topic/`,
    body: () => ({ topic: 'a topic' }),
    pairAt: ['topic'],
    // Synapse's EventValidator: `topic` must be a string.
    wrongType: (path, v) => (path === 'topic' ? notString(v) : undefined),
  },
  {
    name: 'state (power levels)',
    method: 'PUT',
    path: () => `${V3}/rooms/${enc(plRoomId)}/state/m.room.power_levels/`,
    body: () => ({
      users: { [alice.userId]: 100 },
      users_default: 0,
      events: { 'm.room.name': 50 },
      events_default: 0,
      state_default: 50,
      ban: 50,
      kick: 50,
      redact: 50,
      invite: 0,
      notifications: { room: 50 },
    }),
    pairAt: [],
    // Every level an integer, the maps objects of them (M_BAD_JSON, as Synapse's schema).
    wrongType: (path, v) => {
      if (path === `users.${alice.userId}`) return undefined; // lowering her own level may be refused by the auth rules
      return isInt(v) ? undefined : { status: 400, errcode: 'M_BAD_JSON' };
    },
  },
  {
    name: 'redact',
    method: 'PUT',
    path: () => `${room()}/redact/${enc(eventId)}/${nextTxnId('r')}`,
    body: () => ({ reason: 'spam' }),
    pairAt: ['reason'],
  },
  {
    name: 'filter',
    method: 'POST',
    path: () => `${me()}/filter`,
    body: () => ({
      event_fields: ['content.body'],
      event_format: 'client',
      room: { timeline: { limit: 10, types: ['m.room.message'] }, rooms: [roomId] },
      presence: { not_types: ['*'] },
    }),
    pairAt: ['event_fields', '0'],
  },
  {
    name: 'account_data',
    method: 'PUT',
    path: () => `${me()}/account_data/org.example.settings`,
    body: () => ({ theme: 'dark', size: 3, list: ['a'] }),
    pairAt: ['theme'],
  },
  {
    name: 'room account_data',
    method: 'PUT',
    path: () => `${me()}/rooms/${enc(roomId)}/account_data/m.tag.example`,
    body: () => ({ note: 'n' }),
    pairAt: ['note'],
  },
  {
    name: 'profile displayname',
    method: 'PUT',
    path: () => `${V3}/profile/${enc(alice.userId)}/displayname`,
    body: () => ({ displayname: 'Alice' }),
    pairAt: ['displayname'],
  },
  {
    name: 'profile avatar_url',
    method: 'PUT',
    path: () => `${V3}/profile/${enc(alice.userId)}/avatar_url`,
    body: () => ({ avatar_url: 'mxc://test.local/abcdef' }),
    pairAt: [],
  },
  {
    name: 'keys/upload',
    method: 'POST',
    path: () => `${V3}/keys/upload`,
    body: () => ({
      device_keys: {
        user_id: alice.userId,
        device_id: alice.deviceId,
        algorithms: ['m.olm.v1.curve25519-aes-sha2'],
        keys: { [`curve25519:${alice.deviceId}`]: 'Y3VydmUyNTUxOWtleWN1cnZlMjU1MTlrZXljdXJ2ZQ' },
        signatures: { [alice.userId]: { [`ed25519:${alice.deviceId}`]: 'c2lnbmF0dXJl' } },
      },
      one_time_keys: { [`curve25519:AAAA${nextTxnId('k')}`]: 'b3RrYm90a2JvdGtib3RrYm90a2JvdGtib3RrYm90aw' },
    }),
    pairAt: [],
  },
  {
    name: 'account/password',
    method: 'POST',
    path: () => `${V3}/account/password`,
    body: () => ({ new_password: pat.password, logout_devices: false, auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'pat' }, password: pat.password } }),
    as: () => pat,
    pairAt: ['new_password'],
  },
  {
    name: 'devices (rename)',
    method: 'PUT',
    path: () => `${V3}/devices/${enc(alice.deviceId)}`,
    body: () => ({ display_name: 'my phone' }),
    pairAt: ['display_name'],
    // `null` leaves the name as it is, as Synapse.
    wrongType: (path, v) => (path === 'display_name' && v === null ? OK : undefined),
  },
  {
    name: 'delete_devices',
    method: 'POST',
    path: () => `${V3}/delete_devices`,
    body: () => ({ devices: ['NOSUCHDEVICE'], auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: alice.password } }),
    pairAt: ['devices', '0'],
    empty: 'emptyIsObject',
  },
  {
    name: 'pushrules (rule)',
    method: 'PUT',
    path: () => `${V3}/pushrules/global/override/org.example.rule`,
    body: () => ({ actions: ['notify', { set_tweak: 'sound', value: 'default' }], conditions: [{ kind: 'event_match', key: 'content.body', pattern: 'cake' }] }),
    pairAt: ['conditions', '0', 'pattern'],
    // Synapse checks a condition has a `kind` and stores the rest as given
    // (a condition it cannot read never matches); so does Axon.
    wrongType: (path) => (path === 'conditions.0.key' || path === 'conditions.0.pattern' ? OK : undefined),
  },
  {
    name: 'pushrules (enabled)',
    method: 'PUT',
    path: () => `${V3}/pushrules/global/override/.m.rule.master/enabled`,
    body: () => ({ enabled: false }),
    pairAt: [],
    bareBoolean: true,
  },
  {
    name: 'pushrules (actions)',
    method: 'PUT',
    path: () => `${V3}/pushrules/global/underride/.m.rule.message/actions`,
    body: () => ({ actions: ['notify'] }),
    pairAt: [],
  },
  {
    name: 'typing',
    method: 'PUT',
    path: () => `${room()}/typing/${enc(alice.userId)}`,
    body: () => ({ typing: true, timeout: 1000 }),
    pairAt: [],
  },
  {
    name: 'receipts',
    method: 'POST',
    path: () => `${room()}/receipt/m.read/${enc(eventId)}`,
    body: () => ({ thread_id: 'main' }),
    pairAt: [],
  },
  {
    name: 'to-device',
    method: 'PUT',
    path: () => `${V3}/sendToDevice/org.example.ping/${nextTxnId('d')}`,
    body: () => ({ messages: { [bob.userId]: { [bob.deviceId]: { text: 'ping' } } } }),
    pairAt: ['messages', '@bob:test.local', '*', 'text'],
  },
  {
    name: 'join',
    method: 'POST',
    path: () => `${room()}/join`,
    body: () => ({ reason: 'hello' }),
    as: () => bob,
    pairAt: ['reason'],
    empty: 'allowEmpty',
    wrongType: (path, v) => (path === 'reason' && v === null ? OK : undefined),
  },
  {
    name: 'invite',
    method: 'POST',
    path: () => `${room()}/invite`,
    body: () => ({ user_id: '@ivan:test.local', reason: 'come along' }),
    pairAt: ['reason'],
    empty: 'allowEmpty',
    wrongType: (path, v) => (path === 'user_id' ? { status: 400, errcode: 'M_INVALID_PARAM' } : undefined),
  },
  {
    name: 'kick',
    method: 'POST',
    path: () => `${room()}/kick`,
    body: () => ({ user_id: bob.userId, reason: 'out' }),
    pairAt: ['reason'],
    empty: 'allowEmpty',
    wrongType: (path, v) => (path === 'user_id' ? { status: 400, errcode: 'M_INVALID_PARAM' } : undefined),
    beforePair: async () => {
      expect((await api(t, 'POST', `${room()}/join`, { token: bob.accessToken, body: {} })).status).toBe(200);
    },
  },
  {
    name: 'ban',
    method: 'POST',
    path: () => `${room()}/ban`,
    body: () => ({ user_id: '@bert:test.local', reason: 'spam' }),
    pairAt: ['reason'],
    empty: 'allowEmpty',
    wrongType: (path, v) => (path === 'user_id' ? { status: 400, errcode: 'M_INVALID_PARAM' } : undefined),
  },
];

interface Answer {
  status: number;
  body: Json;
  text: string;
}

async function sendText(r: Route, text: string | Buffer): Promise<Answer> {
  const who = r.as ? r.as() : alice;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (who) headers.authorization = `Bearer ${who.accessToken}`;
  const res = await fetch(`${t.url}${r.path()}`, { method: r.method, headers, body: text });
  const raw = await res.text();
  let body: Json = {};
  try {
    body = JSON.parse(raw) as Json;
  } catch {
    body = {};
  }
  return { status: res.status, body, text: raw };
}

/** Not a 5xx; an error is a Matrix error (or a 401 asking for user-interactive auth, which has none). */
function expectMatrixAnswer(a: Answer, what: string): void {
  expect(a.status, `${what}: ${a.text}`).toBeLessThan(500);
  if (a.status === 401 && Array.isArray(a.body.flows) && a.body.errcode === undefined) return;
  if (a.status >= 400) expect(a.body.errcode, `${what}: ${a.text}`).toMatch(/^M_[A-Z_]+$/);
}

function expectRefused(a: Answer, what: string, errcode: string, status = 400): void {
  expect({ status: a.status, errcode: a.body.errcode }, `${what}: ${a.text}`).toEqual({ status, errcode });
}

/** The same status and errcode as the route gives `{}`. */
async function expectAsEmptyObject(r: Route, a: Answer, what: string): Promise<void> {
  const ref = await sendText(r, '{}');
  expect({ status: a.status, errcode: a.body.errcode }, `${what}: ${a.text}`).toEqual({ status: ref.status, errcode: ref.body.errcode });
}

/** Not JSON: 400 M_NOT_JSON, or taken as `{}` where Synapse's servlet does (device deletion). */
async function expectNotJson(r: Route, a: Answer, what: string): Promise<void> {
  if (r.empty === 'emptyIsObject') await expectAsEmptyObject(r, a, what);
  else expectRefused(a, what, 'M_NOT_JSON');
}

/** The JSON text of `body` with the string at `path` (keys; `*` for the first key there) replaced by the raw JSON `literal`. */
function withLiteralAt(body: Json, path: string[], literal: string): string {
  const marker = '\u0001marker\u0001';
  let node: Record<string, unknown> = body;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] === '*' ? Object.keys(node)[0]! : path[i]!;
    node = node[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  node[last === '*' ? Object.keys(node)[0]! : last] = marker;
  return JSON.stringify(body).replace(JSON.stringify(marker), literal);
}

/** Every path into a body's objects and arrays (array elements by index), the root left out. */
function fieldPaths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null) return [];
  const out: string[][] = [];
  for (const [k, v] of Object.entries(value)) {
    out.push([...prefix, k]);
    out.push(...fieldPaths(v, [...prefix, k]));
  }
  return out;
}

function setAt(body: Json, path: string[], v: unknown): Json {
  let node: Record<string, unknown> = body;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string, unknown>;
  node[path[path.length - 1]!] = v;
  return body;
}

function getAt(body: Json, path: string[]): unknown {
  let node: unknown = body;
  for (const k of path) node = (node as Record<string, unknown>)[k];
  return node;
}

const jsonType = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
const WRONG: unknown[] = [0, -1, 2 ** 53, 1.5, true, null, 'x', '', [], ['x'], {}, { a: 1 }];

const LONE = ['"\\ud800"', '"\\uDC00"', '"a\\uD83Db"', '"\\udfff\\ud800"'];
const PAIR = '"smile \\ud83d\\ude00 and \\uD83D\\uDE00"';

describe.each(ROUTES)('$name', (r) => {
  it('a lone surrogate in any string value (and in one added): 400 M_BAD_JSON', async () => {
    const strings = fieldPaths(r.body()).filter((p) => typeof getAt(r.body(), p) === 'string');
    for (const p of [...strings, ['added']]) {
      for (const lone of LONE) {
        const a = await sendText(r, withLiteralAt({ ...r.body(), added: '' }, p, lone));
        expectRefused(a, `${lone} at ${p.join('.')}`, 'M_BAD_JSON');
      }
    }
  });

  it('a lone surrogate in a key, at the top and nested: 400 M_BAD_JSON', async () => {
    const top = JSON.stringify(r.body()).replace(/^\{/, '{"\\ud800":1,');
    expectRefused(await sendText(r, top), 'key at the top', 'M_BAD_JSON');
    const nested = JSON.stringify({ ...r.body(), extra: { ok: 1 } }).replace('"ok"', '"\\uDC00ok"');
    expectRefused(await sendText(r, nested), 'nested key', 'M_BAD_JSON');
  });

  it(`nesting past ${MAX_BODY_DEPTH} levels, at the top and inside a field: 400 M_BAD_JSON`, async () => {
    const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    const body = JSON.stringify(r.body());
    expectRefused(await sendText(r, body.replace(/^\{/, `{"deep":${deep(10_000)},`)), '10,000 objects', 'M_BAD_JSON');
    expectRefused(await sendText(r, body.replace(/^\{/, `{"deep":${'['.repeat(10_000)}${']'.repeat(10_000)},`)), '10,000 arrays', 'M_BAD_JSON');
    expectRefused(await sendText(r, body.replace(/^\{/, `{"deep":${deep(MAX_BODY_DEPTH)},`)), `${MAX_BODY_DEPTH + 1} levels`, 'M_BAD_JSON');
    // Brackets inside strings do not count.
    const inString = JSON.stringify({ ...r.body(), note: '{['.repeat(5000) });
    expectMatrixAnswer(await sendText(r, inString), 'brackets in a string');
  });

  it('bytes that are not UTF-8: 400 M_NOT_JSON (device deletion: as `{}`)', async () => {
    const body = Buffer.from(JSON.stringify({ ...r.body(), note: 'XX' }));
    const at = body.indexOf('XX');
    body[at] = 0xed; // the UTF-8 form of U+D800 (ED A0 80) is not UTF-8
    body[at + 1] = 0xa0;
    await expectNotJson(r, await sendText(r, body), 'ED A0 in a string');
    await expectNotJson(r, await sendText(r, Buffer.from([0x7b, 0xff, 0x7d])), 'FF');
  });

  it('JSON that is not an object: 400 M_BAD_JSON; text that is not JSON: 400 M_NOT_JSON (device deletion: as `{}`)', async () => {
    for (const text of ['[]', '[{}]', '"x"', '1', '-1.5', 'false', 'true']) {
      if (r.bareBoolean && (text === 'true' || text === 'false')) continue;
      expectRefused(await sendText(r, text), text, 'M_BAD_JSON');
    }
    for (const text of ['{"a":', '{"a":1}}', '{"a":NaN}', "{'a':1}", '{"a":1,}', 'nul', ' ']) {
      await expectNotJson(r, await sendText(r, text), JSON.stringify(text));
    }
  });

  it(`no body, and null: as Synapse's servlet (${r.empty ?? 'required'})`, async () => {
    const empty = r.empty ?? 'required';
    const none = await sendText(r, '');
    if (empty === 'required') expectRefused(none, 'no body', 'M_NOT_JSON');
    else await expectAsEmptyObject(r, none, 'no body');
    const nul = await sendText(r, 'null');
    if (empty === 'allowEmpty') await expectAsEmptyObject(r, nul, 'null');
    else expectRefused(nul, 'null', 'M_BAD_JSON');
  });

  it('a body over max_request_body_size: 413 M_TOO_LARGE', async () => {
    const pad = 'x'.repeat(t.config.max_request_body_size);
    expectRefused(await sendText(r, JSON.stringify({ ...r.body(), pad })), 'oversize', 'M_TOO_LARGE', 413);
  });

  it("a wrong type in every field: never a 5xx, errors are M_*, and Synapse's answer where it has one", async () => {
    for (const p of fieldPaths(r.body())) {
      const was = jsonType(getAt(r.body(), p));
      for (const v of WRONG) {
        if (jsonType(v) === was) continue;
        const a = await sendText(r, JSON.stringify(setAt(r.body(), p, v)));
        const what = `${p.join('.')} = ${JSON.stringify(v)}`;
        expectMatrixAnswer(a, what);
        const want = r.wrongType?.(p.join('.'), v);
        if (want) expect({ status: a.status, errcode: a.body.errcode }, `${what}: ${a.text}`).toEqual({ status: want.status, errcode: want.errcode });
      }
    }
  });
});

describe.each(ROUTES.filter((r) => r.pairAt.length > 0))('$name with a valid surrogate pair', (r) => {
  it('is accepted', async () => {
    await r.beforePair?.();
    const a = await sendText(r, withLiteralAt(r.body(), r.pairAt, PAIR));
    expect(a.status, a.text).toBe(200);
    if (r.name === 'account/password') {
      // The pair reached the stored hash: the new password signs in.
      const login = await api(t, 'POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'pat' }, password: 'smile 😀 and 😀' } });
      expect(login.status).toBe(200);
    }
  });
});
