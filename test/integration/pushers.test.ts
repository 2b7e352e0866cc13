/**
 * Pushers: GET /pushers and POST /pushers/set (create, replace, delete,
 * `append` across users, validation), the pushers of a logged-out device
 * going with it, and the sending loop against a real push gateway (a local
 * node:http server): the notification bodies of both formats, read events
 * left out, `rejected` removing the pusher, retries after failures, badge
 * updates, restarts, and the IP blacklist (Synapse's default refuses the
 * loopback, so the shared server whitelists 127.0.0.1).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartTestServer } from '../helpers/restart.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';
import { DEFAULT_IP_RANGE_BLACKLIST } from '../../src/services/outbound/ip-ranges.js';
import { GatewayClient } from '../../src/services/push/gateway-client.js';
import { pusherConfig } from '../../src/services/push/pushers.js';

const NOTIFY = '/_matrix/push/v1/notify';
const enc = encodeURIComponent;

interface Received {
  path: string;
  contentType: string | undefined;
  body: { notification: Record<string, unknown> & { devices: Record<string, unknown>[] } };
  status: number;
}

/** A push gateway: records every request; per pushkey it can fail, or reject the key. */
class Gateway {
  readonly received: Received[] = [];
  /** pushkey -> how many more requests to answer with 500. */
  readonly failures = new Map<string, number>();
  readonly failAlways = new Set<string>();
  readonly reject = new Set<string>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${NOTIFY}`;
  }

  private async handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'];
    const key = body.notification.devices[0]?.['pushkey'] as string;
    let status = 200;
    let answer: unknown = { rejected: [] };
    const left = this.failures.get(key) ?? 0;
    if (this.failAlways.has(key) || left > 0) {
      if (left > 0) this.failures.set(key, left - 1);
      status = 500;
      answer = { error: 'down' };
    } else if (this.reject.has(key)) {
      answer = { rejected: [key] };
    }
    this.received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body, status });
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  }

  /** Requests for a pushkey (optionally only those about an event, or only answered with 200). */
  for(pushkey: string, opts: { eventId?: string; ok?: boolean } = {}): Received[] {
    return this.received.filter(
      (r) =>
        r.body.notification.devices[0]?.['pushkey'] === pushkey &&
        (opts.eventId === undefined || r.body.notification['event_id'] === opts.eventId) &&
        (opts.ok === undefined || (r.status === 200) === opts.ok),
    );
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let t: TestServer;
let gw: Gateway;
let txn = 0;

function pusher(pushkey: string, extra: Record<string, unknown> = {}, data: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'http',
    app_id: 'com.example.app.ios',
    app_display_name: 'Mat Rix',
    device_display_name: 'iPhone 9',
    profile_tag: 'xxyyzz',
    lang: 'en',
    pushkey,
    data: { url: gw.url, ...data },
    ...extra,
  };
}
const setPusher = (user: TestUser, body: unknown, token = user.accessToken) => api(t, 'POST', '/_matrix/client/v3/pushers/set', { token, body });
const getPushers = async (user: TestUser, token = user.accessToken) => {
  const res = await api(t, 'GET', '/_matrix/client/v3/pushers', { token });
  expect(res.status).toBe(200);
  return res.body.pushers as Record<string, unknown>[];
};
async function send(user: TestUser, roomId: string, content: Record<string, unknown>, type = 'm.room.message'): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/${type}/p${++txn}`, { token: user.accessToken, body: content });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}
async function room(creator: TestUser, members: TestUser[], body: Record<string, unknown> = {}): Promise<string> {
  const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: creator.accessToken, body: { preset: 'public_chat', ...body } });
  expect(res.status).toBe(200);
  const roomId = res.body.room_id as string;
  for (const m of members) expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: m.accessToken, body: {} })).status).toBe(200);
  return roomId;
}
const receipt = (user: TestUser, roomId: string, eventId: string) =>
  api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, { token: user.accessToken, body: {} });
const pusherRow = (userId: string, pushkey: string) =>
  t.server.ctx.database.db.selectFrom('pushers').selectAll().where('user_id', '=', userId).where('pushkey', '=', pushkey).executeTakeFirst();

beforeAll(async () => {
  gw = new Gateway();
  await gw.start();
  // The gateway is on the loopback, which Synapse's default ip_range_blacklist refuses.
  t = await startTestServer({ yaml: { ip_range_whitelist: ['127.0.0.1'] } });
});
afterAll(async () => {
  await t?.close();
  await gw?.close();
});

describe('GET /pushers and POST /pushers/set', () => {
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  beforeAll(async () => {
    alice = await createUser(t, 'set-alice');
    bob = await createUser(t, 'set-bob');
    carol = await createUser(t, 'set-carol');
  });

  it('lists nothing at first, then the pusher set with the spec example (r0 too)', async () => {
    expect(await getPushers(alice)).toEqual([]);
    const example = {
      lang: 'en',
      kind: 'http',
      app_display_name: 'Mat Rix',
      device_display_name: 'iPhone 9',
      profile_tag: 'xxyyzz',
      app_id: 'com.example.app.ios',
      pushkey: 'APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeco8ohsN5PjL1iC2dNtk2BAokeMCg2ZXKqpc8FXKmhX94kIxQ',
      data: { url: 'https://push-gateway.location.here/_matrix/push/v1/notify', format: 'event_id_only' },
      append: false,
    };
    const res = await setPusher(alice, example);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    const expected = {
      pushkey: example.pushkey,
      kind: 'http',
      app_id: 'com.example.app.ios',
      app_display_name: 'Mat Rix',
      device_display_name: 'iPhone 9',
      profile_tag: 'xxyyzz',
      lang: 'en',
      data: { url: 'https://push-gateway.location.here/_matrix/push/v1/notify', format: 'event_id_only' },
    };
    expect(await getPushers(alice)).toEqual([expected]);
    const r0 = await api(t, 'GET', '/_matrix/client/r0/pushers', { token: alice.accessToken });
    expect(r0.body).toEqual({ pushers: [expected] });
  });

  it('replaces the pusher with the same app_id and pushkey; another pushkey is another pusher', async () => {
    expect((await setPusher(bob, pusher('bob-1'))).status).toBe(200);
    expect((await setPusher(bob, pusher('bob-1', { device_display_name: 'iPhone 10', lang: 'de', profile_tag: undefined }, { custom: 1 }))).status).toBe(200);
    let list = await getPushers(bob);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ pushkey: 'bob-1', device_display_name: 'iPhone 10', lang: 'de', profile_tag: '', data: { url: gw.url, custom: 1 } });
    expect((await setPusher(bob, pusher('bob-2'))).status).toBe(200);
    expect((await setPusher(bob, pusher('bob-1', { app_id: 'com.example.app.android' }))).status).toBe(200);
    list = await getPushers(bob);
    expect(list.map((p) => `${p.app_id as string}/${p.pushkey as string}`)).toEqual(['com.example.app.ios/bob-1', 'com.example.app.ios/bob-2', 'com.example.app.android/bob-1']);
  });

  it('kind null deletes the pusher (and deleting one that does not exist is fine)', async () => {
    const res = await setPusher(bob, { kind: null, app_id: 'com.example.app.ios', pushkey: 'bob-2' });
    expect(res.status).toBe(200);
    expect((await getPushers(bob)).map((p) => p.pushkey)).toEqual(['bob-1', 'bob-1']);
    expect((await setPusher(bob, { kind: null, app_id: 'com.example.app.ios', pushkey: 'never-was' })).status).toBe(200);
  });

  it('without append, the same app_id and pushkey of other users goes; with append it stays', async () => {
    expect((await setPusher(alice, pusher('shared'))).status).toBe(200);
    expect((await setPusher(carol, pusher('shared', { append: true }))).status).toBe(200);
    expect((await getPushers(alice)).some((p) => p.pushkey === 'shared')).toBe(true);
    expect((await getPushers(carol)).some((p) => p.pushkey === 'shared')).toBe(true);
    // Bob takes the pushkey over: Alice's and Carol's pushers for it go.
    expect((await setPusher(bob, pusher('shared'))).status).toBe(200);
    expect((await getPushers(alice)).some((p) => p.pushkey === 'shared')).toBe(false);
    expect((await getPushers(carol)).some((p) => p.pushkey === 'shared')).toBe(false);
    expect((await getPushers(bob)).some((p) => p.pushkey === 'shared')).toBe(true);
    // Another app with the same pushkey is not the same pusher.
    expect((await setPusher(alice, pusher('shared', { app_id: 'org.other.app' }))).status).toBe(200);
    expect((await getPushers(bob)).some((p) => p.pushkey === 'shared')).toBe(true);
  });

  it('stores a kind it does not send with (as Synapse), but refuses email pushers', async () => {
    expect((await setPusher(carol, { ...pusher('odd'), kind: 'org.example.custom', data: {} })).status).toBe(200);
    expect((await getPushers(carol)).find((p) => p.pushkey === 'odd')).toMatchObject({ kind: 'org.example.custom', data: {} });
    const email = await setPusher(carol, { ...pusher('carol@example.org'), kind: 'email', app_id: 'm.email', data: {} });
    expect(email.status).toBe(400);
    expect(email.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('names the missing parameters (M_MISSING_PARAM)', async () => {
    let res = await setPusher(alice, { kind: 'http', app_id: 'a.b', pushkey: 'k' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_MISSING_PARAM', error: 'Missing parameters: app_display_name, device_display_name, lang, data' });
    res = await setPusher(alice, { app_id: 'a.b', pushkey: 'k' });
    expect(res.body.errcode).toBe('M_MISSING_PARAM');
    expect(res.body.error).toContain('kind');
    res = await setPusher(alice, { kind: null, app_id: 'a.b' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errcode: 'M_MISSING_PARAM', error: 'Missing parameters: pushkey' });
    res = await setPusher(alice, { ...pusher('k'), lang: null });
    expect(res.body).toMatchObject({ errcode: 'M_MISSING_PARAM', error: 'Missing parameters: lang' });
    res = await setPusher(alice, pusher('k', {}, { url: undefined }));
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_MISSING_PARAM');
  });

  it('refuses fields of the wrong type or size (M_INVALID_PARAM)', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['kind not a string', { ...pusher('k'), kind: 1 }],
      ['empty kind', { ...pusher('k'), kind: '' }],
      ['app_id not a string', { ...pusher('k'), app_id: 5 }],
      ['app_id of 65 characters', { ...pusher('k'), app_id: 'a'.repeat(65) }],
      ['empty pushkey', pusher('')],
      ['pushkey over 512 bytes', pusher('€'.repeat(171))],
      ['app_display_name not a string', { ...pusher('k'), app_display_name: ['x'] }],
      ['device_display_name not a string', { ...pusher('k'), device_display_name: {} }],
      ['lang not a string', { ...pusher('k'), lang: true }],
      ['profile_tag not a string', { ...pusher('k'), profile_tag: 3 }],
      ['data not an object', { ...pusher('k'), data: 'https://x/_matrix/push/v1/notify' }],
      ['data an array', { ...pusher('k'), data: [] }],
      ['append not a boolean', { ...pusher('k'), append: 'yes' }],
      ['format not a string', pusher('k', {}, { format: 1 })],
      ['url not a string', pusher('k', {}, { url: 7 })],
      ['url not absolute', pusher('k', {}, { url: '/_matrix/push/v1/notify' })],
      ['url of another scheme', pusher('k', {}, { url: 'ftp://gw.example/_matrix/push/v1/notify' })],
      ['url with another path', pusher('k', {}, { url: 'https://gw.example/notify' })],
      ['url with a longer path', pusher('k', {}, { url: 'https://gw.example/_matrix/push/v1/notify/x' })],
      ['U+0000 in data', pusher('k', {}, { custom: 'a\u0000b' })],
      ['U+0000 in a name', { ...pusher('k'), app_display_name: 'a\u0000' }],
      ['pushkey not a string in a delete', { kind: null, app_id: 'a.b', pushkey: 9 }],
    ];
    for (const [what, body] of cases) {
      const res = await setPusher(alice, body);
      expect({ what, status: res.status, errcode: res.body.errcode }).toEqual({ what, status: 400, errcode: 'M_INVALID_PARAM' });
    }
    // The limits themselves are allowed; so is a query string on the URL.
    expect((await setPusher(alice, { ...pusher('€'.repeat(170)), app_id: 'a'.repeat(64) })).status).toBe(200);
    expect((await setPusher(alice, pusher('q', {}, { url: `${gw.url}?token=1` }))).status).toBe(200);
    expect((await getPushers(alice)).some((p) => p.app_id === 'a'.repeat(64))).toBe(true);
  });

  it('needs a JSON object body and an access token', async () => {
    const notJson = await fetch(`${t.url}/_matrix/client/v3/pushers/set`, { method: 'POST', headers: { authorization: `Bearer ${alice.accessToken}` } });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { errcode: string }).errcode).toBe('M_NOT_JSON');
    const array = await api(t, 'POST', '/_matrix/client/v3/pushers/set', { token: alice.accessToken, body: [] });
    expect(array.body.errcode).toBe('M_BAD_JSON');
    expect((await api(t, 'GET', '/_matrix/client/v3/pushers')).status).toBe(401);
    expect((await api(t, 'POST', '/_matrix/client/v3/pushers/set', { body: pusher('k') })).body.errcode).toBe('M_MISSING_TOKEN');
  });
});

describe("a device's pushers go with it", () => {
  it('logging a device out deletes the pushers it set; the other device keeps its own', async () => {
    const dan = await createUser(t, 'dev-dan');
    const second = await t.server.ctx.services.auth.createSession(t.server.ctx.database.db, { userId: dan.userId, displayName: 'second' });
    expect((await setPusher(dan, pusher('dan-phone'))).status).toBe(200);
    expect((await setPusher(dan, pusher('dan-tablet'), second.access_token)).status).toBe(200);
    // Setting the phone's pusher again from the tablet leaves it the phone's.
    expect((await setPusher(dan, pusher('dan-phone', { device_display_name: 'renamed' }), second.access_token)).status).toBe(200);
    expect((await api(t, 'POST', '/_matrix/client/v3/logout', { token: dan.accessToken, body: {} })).status).toBe(200);
    expect((await getPushers(dan, second.access_token)).map((p) => p.pushkey)).toEqual(['dan-tablet']);
  });

  it('logging out everywhere deletes them all; so does deleting the device', async () => {
    const eve = await createUser(t, 'dev-eve');
    const second = await t.server.ctx.services.auth.createSession(t.server.ctx.database.db, { userId: eve.userId, displayName: 'second' });
    expect((await setPusher(eve, pusher('eve-1'))).status).toBe(200);
    expect((await setPusher(eve, pusher('eve-2'), second.access_token)).status).toBe(200);
    // DELETE /devices/{id} (UIA with the password) removes the second device's pusher.
    const del = await api(t, 'DELETE', `/_matrix/client/v3/devices/${enc(second.device_id)}`, {
      token: eve.accessToken,
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: eve.userId }, password: eve.password } },
    });
    expect(del.status).toBe(200);
    expect((await getPushers(eve)).map((p) => p.pushkey)).toEqual(['eve-1']);
    const third = await t.server.ctx.services.auth.createSession(t.server.ctx.database.db, { userId: eve.userId, displayName: 'third' });
    expect((await setPusher(eve, pusher('eve-3'), third.access_token)).status).toBe(200);
    expect((await api(t, 'POST', '/_matrix/client/v3/logout/all', { token: eve.accessToken, body: {} })).status).toBe(200);
    expect(await t.server.ctx.database.db.selectFrom('pushers').select('pushkey').where('user_id', '=', eve.userId).execute()).toEqual([]);
  });
});

describe('sending to the push gateway', () => {
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;
  beforeAll(async () => {
    alice = await createUser(t, 'push-alice');
    bob = await createUser(t, 'push-bob');
    carol = await createUser(t, 'push-carol');
    roomId = await room(alice, [bob, carol], { name: 'Mission Control', room_alias_name: 'mission' });
    expect((await setPusher(bob, pusher('bob-full', {}, { custom: { nested: true } }))).status).toBe(200);
    expect((await setPusher(carol, pusher('carol-id-only', {}, { format: 'event_id_only' }))).status).toBe(200);
  });

  it('POSTs a message to the gateway with the event, room, sender (and their name in the room), counts and device', async () => {
    const before = Math.floor(Date.now() / 1000);
    const eventId = await send(carol, roomId, { msgtype: 'm.text', body: "I'm floating in a most peculiar way." });
    const [req] = await waitFor('the push to bob', () => gw.for('bob-full', { eventId }).length > 0 && gw.for('bob-full', { eventId }));
    expect(req!.path).toBe(NOTIFY);
    expect(req!.contentType).toBe('application/json');
    const device = req!.body.notification.devices[0]!;
    expect(req!.body).toEqual({
      notification: {
        event_id: eventId,
        room_id: roomId,
        type: 'm.room.message',
        sender: carol.userId,
        sender_display_name: 'push-carol',
        room_name: 'Mission Control',
        room_alias: `#mission:${t.config.server_name}`,
        prio: 'low',
        content: { msgtype: 'm.text', body: "I'm floating in a most peculiar way." },
        counts: { unread: 1 },
        devices: [{ app_id: 'com.example.app.ios', pushkey: 'bob-full', pushkey_ts: device['pushkey_ts'], data: { custom: { nested: true } } }],
      },
    });
    expect(device['pushkey_ts']).toBeGreaterThanOrEqual(before - 60);
    expect(device['pushkey_ts']).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
  });

  it('event_id_only: only the event and room ids, prio, counts and the device (data keeps format)', async () => {
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'secret' });
    const [req] = await waitFor('the push to carol', () => gw.for('carol-id-only', { eventId }).length > 0 && gw.for('carol-id-only', { eventId }));
    const device = req!.body.notification.devices[0]!;
    expect(req!.body).toEqual({
      notification: {
        event_id: eventId,
        room_id: roomId,
        prio: 'low',
        counts: { unread: 1 },
        devices: [{ app_id: 'com.example.app.ios', pushkey: 'carol-id-only', pushkey_ts: device['pushkey_ts'], data: { format: 'event_id_only' } }],
      },
    });
  });

  it('a mention sounds and highlights: prio high and the tweaks; an encrypted event is high too', async () => {
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'bob, look', 'm.mentions': { user_ids: [bob.userId] } });
    const [req] = await waitFor('the mention', () => gw.for('bob-full', { eventId }).length > 0 && gw.for('bob-full', { eventId }));
    expect(req!.body.notification['prio']).toBe('high');
    expect(req!.body.notification.devices[0]!['tweaks']).toEqual({ sound: 'default', highlight: true });
    // Carol was not mentioned.
    const [other] = await waitFor('carol’s copy', () => gw.for('carol-id-only', { eventId }).length > 0 && gw.for('carol-id-only', { eventId }));
    expect(other!.body.notification['prio']).toBe('low');

    const encrypted = await send(alice, roomId, { algorithm: 'm.megolm.v1.aes-sha2', ciphertext: 'AwgA', session_id: 's', device_id: 'D', sender_key: 'k' }, 'm.room.encrypted');
    const [enc1] = await waitFor('the encrypted event', () => gw.for('bob-full', { eventId: encrypted }).length > 0 && gw.for('bob-full', { eventId: encrypted }));
    expect(enc1!.body.notification).toMatchObject({ type: 'm.room.encrypted', prio: 'high' });
    expect(enc1!.body.notification.devices[0]!['tweaks']).toBeUndefined();
  });

  it('counts unread rooms, not messages, and pending invites', async () => {
    const other = await room(alice, [bob]);
    const invited = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { invite: [bob.userId] } })).body.room_id as string;
    // The invite itself notifies bob (.m.rule.invite_for_me).
    await waitFor('the invite push', () => gw.for('bob-full').some((r) => r.body.notification['room_id'] === invited));
    const eventId = await send(alice, other, { msgtype: 'm.text', body: 'over here' });
    const [req] = await waitFor('the push', () => gw.for('bob-full', { eventId }).length > 0 && gw.for('bob-full', { eventId }));
    // Unread: the first room, this room, and the invite.
    expect(req!.body.notification['counts']).toEqual({ unread: 3 });
    // A 1:1 room sounds: prio high.
    expect(req!.body.notification['prio']).toBe('high');
  });

  it('the sender is never pushed their own events; a user without pushers gets nothing', async () => {
    const eventId = await send(bob, roomId, { msgtype: 'm.text', body: 'from bob' });
    await waitFor('carol’s push', () => gw.for('carol-id-only', { eventId }).length > 0);
    expect(gw.for('bob-full', { eventId })).toEqual([]);
    expect(gw.received.filter((r) => r.body.notification['event_id'] === eventId)).toHaveLength(1);
  });

  it('when the user reads elsewhere, a badge-only notification carries the new count', async () => {
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'read me' });
    await waitFor('the push', () => gw.for('bob-full', { eventId }).length > 0);
    const seen = gw.for('bob-full').length;
    expect((await receipt(bob, roomId, eventId)).status).toBe(200);
    const badge = await waitFor('the badge update', () =>
      gw
        .for('bob-full')
        .slice(seen)
        .find((r) => r.body.notification['event_id'] === undefined),
    );
    expect(badge.body.notification['counts']).toEqual({ unread: 2 });
    expect(badge.body.notification.devices[0]).toMatchObject({ app_id: 'com.example.app.ios', pushkey: 'bob-full', data: { custom: { nested: true } } });
  });
});

describe('what is not pushed, failures and retries', () => {
  let alice: TestUser;
  let dave: TestUser;
  let roomId: string;
  beforeAll(async () => {
    alice = await createUser(t, 'fail-alice');
    dave = await createUser(t, 'fail-dave');
    const other = await createUser(t, 'fail-other');
    roomId = await room(alice, [dave, other]);
  });

  it('retries a failing gateway with backoff, delivering the same event once it recovers', async () => {
    expect((await setPusher(dave, pusher('dave-retry'))).status).toBe(200);
    gw.failures.set('dave-retry', 2);
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'eventually' });
    await waitFor('delivery', () => gw.for('dave-retry', { eventId, ok: true }).length > 0);
    expect(gw.for('dave-retry', { eventId, ok: false })).toHaveLength(2);
    // The success is recorded once the gateway's answer is in.
    const row = await waitFor('the success to be recorded', async () => {
      const r = await pusherRow(dave.userId, 'dave-retry');
      return r?.last_success !== null && r;
    });
    expect(row.failing_since).toBeNull();
    expect(Number(row.last_stream_ordering)).toBeGreaterThan(0);
    expect((await setPusher(dave, { kind: null, app_id: 'com.example.app.ios', pushkey: 'dave-retry' })).status).toBe(200);
  });

  it('leaves out events the user has read by the time the loop gets to them', async () => {
    expect((await setPusher(dave, pusher('dave-read'))).status).toBe(200);
    gw.failAlways.add('dave-read');
    const m1 = await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    // The gateway is down: the loop is backing off, stuck on m1.
    await waitFor('the failed attempt', () => gw.for('dave-read', { eventId: m1 }).length > 0);
    await waitFor('the failure to be recorded', async () => (await pusherRow(dave.userId, 'dave-read'))?.failing_since != null);
    const m2 = await send(alice, roomId, { msgtype: 'm.text', body: 'two' });
    expect((await receipt(dave, roomId, m2)).status).toBe(200);
    gw.failAlways.delete('dave-read');
    const m3 = await send(alice, roomId, { msgtype: 'm.text', body: 'three' });
    await waitFor('m3', () => gw.for('dave-read', { eventId: m3, ok: true }).length > 0);
    expect(gw.for('dave-read', { ok: true }).map((r) => r.body.notification['event_id'])).toEqual([m3]);
    expect(gw.for('dave-read', { eventId: m2 })).toEqual([]);
  });

  it('a gateway rejecting the pushkey removes the pusher', async () => {
    expect((await setPusher(dave, pusher('dave-rejected'))).status).toBe(200);
    gw.reject.add('dave-rejected');
    const eventId = await send(alice, roomId, { msgtype: 'm.text', body: 'gone' });
    await waitFor('the rejection', () => gw.for('dave-rejected', { eventId }).length > 0);
    await waitFor('the pusher to go', async () => !(await getPushers(dave)).some((p) => p.pushkey === 'dave-rejected'));
    const later = await send(alice, roomId, { msgtype: 'm.text', body: 'after' });
    await waitFor('the other pusher', () => gw.for('dave-read', { eventId: later }).length > 0);
    expect(gw.for('dave-rejected')).toHaveLength(1);
  });
});

describe('the IP blacklist', () => {
  it('by default, as Synapse, refuses gateways on private addresses; ip_range_whitelist lets them through', async () => {
    const g = new Gateway();
    await g.start();
    const body = { notification: { event_id: '$e', devices: [{ app_id: 'a.b', pushkey: 'k' }] } };
    const defaults = pusherConfig({ ...t.config, raw: {} });
    expect(defaults.blacklist).toEqual(DEFAULT_IP_RANGE_BLACKLIST);
    const blocked = new GatewayClient({ blacklist: defaults.blacklist, whitelist: defaults.whitelist, timeoutMs: 5000, userAgent: 'test' });
    const allowed = new GatewayClient({ blacklist: defaults.blacklist, whitelist: ['127.0.0.1'], timeoutMs: 5000, userAgent: 'test' });
    try {
      const refused = await blocked.notify(g.url, body, new AbortController().signal);
      expect(refused.ok).toBe(false);
      expect(g.received).toEqual([]);
      // A host name resolving to the loopback is refused too (checked in the socket's own lookup).
      const byName = await blocked.notify(g.url.replace('127.0.0.1', 'localhost'), body, new AbortController().signal);
      expect(byName.ok).toBe(false);
      expect(g.received).toEqual([]);
      expect(await allowed.notify(g.url, body, new AbortController().signal)).toEqual({ ok: true, rejected: [] });
      expect(g.received).toHaveLength(1);
    } finally {
      await blocked.close();
      await allowed.close();
      await g.close();
    }
  });
});

// Last: it restarts the shared server.
describe('restarts', () => {
  it('neither re-sends what was sent nor skips what was still failing', async () => {
    const alice = await createUser(t, 'restart-alice');
    const bob = await createUser(t, 'restart-bob');
    const roomId = await room(alice, [bob]);
    expect((await setPusher(bob, pusher('bob-restart'))).status).toBe(200);
    const m1 = await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    await waitFor('m1', () => gw.for('bob-restart', { eventId: m1, ok: true }).length > 0);
    await waitFor('m1 to be recorded', async () => (await pusherRow(bob.userId, 'bob-restart'))?.last_success != null);
    gw.failAlways.add('bob-restart');
    const m2 = await send(alice, roomId, { msgtype: 'm.text', body: 'two' });
    await waitFor('the failed m2', () => gw.for('bob-restart', { eventId: m2 }).length > 0);
    t = await restartTestServer(t);
    gw.failAlways.delete('bob-restart');
    // The restarted loop picks m2 up again (it never got through), then m3.
    const m3 = await send(alice, roomId, { msgtype: 'm.text', body: 'three' });
    await waitFor('m3', () => gw.for('bob-restart', { eventId: m3, ok: true }).length > 0);
    expect(gw.for('bob-restart', { ok: true }).map((r) => r.body.notification['event_id'])).toEqual([m1, m2, m3]);
  });
});
