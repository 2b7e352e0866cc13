/**
 * The media admin API against the real server, with media uploaded through
 * POST /_matrix/media/v3/upload (remote media, which only federation would
 * fetch, is written directly): listing and deleting a user's media, a
 * room's media, querying, deleting, quarantining and protecting one item,
 * bulk deletion by age and size, purging the remote cache, and the errors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { download, localContentPath, localThumbnailDir, pngImage, thumbnail } from '../helpers/media-http.js';
import { exists, insertRemoteMedia, uploadMedia } from '../helpers/media.js';
import { useServerWith } from '../helpers/rooms.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const { t, admin, alice } = useServerWith({ admins: ['admin'] }, 'admin', 'alice');

const enc = encodeURIComponent;
const db = () => t.server.ctx.database.db;
const row = (mediaId: string) => db().selectFrom('local_media').selectAll().where('media_id', '=', mediaId).executeTakeFirst();
const remoteRow = (origin: string, mediaId: string) =>
  db().selectFrom('remote_media').selectAll().where('media_origin', '=', origin).where('media_id', '=', mediaId).executeTakeFirst();
const setTimes = (mediaId: string, created: number, lastAccess: number | null = null) =>
  db().updateTable('local_media').set({ created_ts: created, last_access_ts: lastAccess }).where('media_id', '=', mediaId).execute();
const asAdmin = (method: string, path: string, body?: unknown) => api(t, method, path, { token: admin.accessToken, body });
const userMedia = (userId: string, query = '') => `/_synapse/admin/v1/users/${enc(userId)}/media${query}`;

let userCount = 0;
async function freshUser(): Promise<TestUser> {
  return createUser(t, `u${++userCount}`);
}

let txn = 0;
async function createRoom(token: string): Promise<string> {
  const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token, body: {} });
  expect(res.status).toBe(200);
  return res.body.room_id as string;
}
async function send(token: string, roomId: string, content: object, type = 'm.room.message'): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/${type}/m${++txn}`, { token, body: content });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}

function expectError(res: { status: number; body: Record<string, unknown> }, status: number, errcode: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.errcode).toBe(errcode);
}

describe('access', () => {
  const endpoints: [string, string][] = [
    ['GET', '/_synapse/admin/v1/users/@alice:test.local/media'],
    ['DELETE', '/_synapse/admin/v1/users/@alice:test.local/media'],
    ['GET', '/_synapse/admin/v1/room/!r:test.local/media'],
    ['POST', '/_synapse/admin/v1/room/!r:test.local/media/quarantine'],
    ['POST', '/_synapse/admin/v1/quarantine_media/!r:test.local'],
    ['POST', '/_synapse/admin/v1/user/@alice:test.local/media/quarantine'],
    ['GET', '/_synapse/admin/v1/media/test.local/abcdefghijklmnopqrstuvwx'],
    ['DELETE', '/_synapse/admin/v1/media/test.local/abcdefghijklmnopqrstuvwx'],
    ['POST', '/_synapse/admin/v1/media/quarantine/test.local/abcdefghijklmnopqrstuvwx'],
    ['POST', '/_synapse/admin/v1/media/unquarantine/test.local/abcdefghijklmnopqrstuvwx'],
    ['POST', '/_synapse/admin/v1/media/protect/abcdefghijklmnopqrstuvwx'],
    ['POST', '/_synapse/admin/v1/media/unprotect/abcdefghijklmnopqrstuvwx'],
    ['POST', '/_synapse/admin/v1/media/delete?before_ts=1700000000000'],
    ['POST', '/_synapse/admin/v1/media/test.local/delete?before_ts=1700000000000'],
    ['POST', '/_synapse/admin/v1/purge_media_cache?before_ts=1700000000000'],
  ];
  it.each(endpoints)('%s %s without a token is 401 M_MISSING_TOKEN', async (method, path) => {
    expectError(await api(t, method, path), 401, 'M_MISSING_TOKEN');
  });
  it.each(endpoints)('%s %s as a non-admin is 403 M_FORBIDDEN', async (method, path) => {
    expectError(await api(t, method, path, { token: alice.accessToken }), 403, 'M_FORBIDDEN');
  });
  it('a non-admin cannot delete, quarantine or protect anything', async () => {
    const m = await uploadMedia(t, alice, 'mine');
    for (const [method, path] of [
      ['DELETE', `/_synapse/admin/v1/media/test.local/${m.mediaId}`],
      ['POST', `/_synapse/admin/v1/media/quarantine/test.local/${m.mediaId}`],
      ['POST', `/_synapse/admin/v1/media/protect/${m.mediaId}`],
    ] as const) {
      expectError(await api(t, method, path, { token: alice.accessToken }), 403, 'M_FORBIDDEN');
    }
    expect(await row(m.mediaId)).toMatchObject({ quarantined_by: null, safe_from_quarantine: false });
  });
});

describe('GET /_synapse/admin/v1/users/<user_id>/media', () => {
  let owner: TestUser;
  const ids: string[] = [];
  beforeAll(async () => {
    owner = await freshUser();
    // The spec-style example: three uploads, created at 100400, 200400, 300400.
    const a = await uploadMedia(t, owner, Buffer.alloc(67, 1), { contentType: 'image/png', fileName: 'test1.png' });
    const b = await uploadMedia(t, owner, Buffer.alloc(67, 2), { contentType: 'image/png', fileName: 'test2.png' });
    const c = await uploadMedia(t, owner, Buffer.alloc(1337, 3));
    await setTimes(a.mediaId, 100400);
    await setTimes(b.mediaId, 200400);
    await setTimes(c.mediaId, 300400, 300700);
    ids.push(a.mediaId, b.mediaId, c.mediaId);
  });

  it('lists every field Synapse documents, newest first by default', async () => {
    const res = await asAdmin('GET', userMedia(owner.userId));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      media: [
        {
          created_ts: 300400,
          last_access_ts: 300700,
          media_id: ids[2],
          media_length: 1337,
          media_type: 'application/octet-stream',
          quarantined_by: null,
          safe_from_quarantine: false,
          upload_name: null,
        },
        {
          created_ts: 200400,
          last_access_ts: null,
          media_id: ids[1],
          media_length: 67,
          media_type: 'image/png',
          quarantined_by: null,
          safe_from_quarantine: false,
          upload_name: 'test2.png',
        },
        {
          created_ts: 100400,
          last_access_ts: null,
          media_id: ids[0],
          media_length: 67,
          media_type: 'image/png',
          quarantined_by: null,
          safe_from_quarantine: false,
          upload_name: 'test1.png',
        },
      ],
      total: 3,
    });
  });

  it('paginates with from, limit and next_token', async () => {
    const first = await asAdmin('GET', userMedia(owner.userId, '?limit=2'));
    expect((first.body.media as { media_id: string }[]).map((m) => m.media_id)).toEqual([ids[2], ids[1]]);
    expect(first.body.next_token).toBe(2);
    expect(first.body.total).toBe(3);
    const second = await asAdmin('GET', userMedia(owner.userId, `?limit=2&from=${first.body.next_token}`));
    expect((second.body.media as { media_id: string }[]).map((m) => m.media_id)).toEqual([ids[0]]);
    expect(second.body).not.toHaveProperty('next_token');
    expect(second.body.total).toBe(3);
  });

  it('orders by the given column, forwards by default, ties by media id', async () => {
    const byId = (res: { body: Record<string, unknown> }) => (res.body.media as { media_id: string }[]).map((m) => m.media_id);
    expect(byId(await asAdmin('GET', userMedia(owner.userId, '?order_by=created_ts')))).toEqual([ids[0], ids[1], ids[2]]);
    expect(byId(await asAdmin('GET', userMedia(owner.userId, '?dir=f')))).toEqual([ids[0], ids[1], ids[2]]);
    expect(byId(await asAdmin('GET', userMedia(owner.userId, '?order_by=upload_name&dir=b')))).toEqual(
      // NULL names sort first when descending (PostgreSQL), then test2, test1.
      [ids[2], ids[1], ids[0]],
    );
    const bySize = byId(await asAdmin('GET', userMedia(owner.userId, '?order_by=media_length&dir=b')));
    expect(bySize[0]).toBe(ids[2]);
    expect(bySize.slice(1)).toEqual([ids[0], ids[1]].sort());
  });

  it('a user without media has an empty list', async () => {
    const res = await asAdmin('GET', userMedia(admin.userId));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ media: [], total: 0 });
  });

  it.each([
    ['?order_by=nonsense', 'M_INVALID_PARAM'],
    ['?dir=sideways', 'M_INVALID_PARAM'],
    ['?from=-1', 'M_INVALID_PARAM'],
    ['?limit=-5', 'M_INVALID_PARAM'],
    ['?limit=ten', 'M_INVALID_PARAM'],
  ])('%s is 400 %s', async (query, errcode) => {
    expectError(await asAdmin('GET', userMedia(owner.userId, query)), 400, errcode);
  });

  it('a remote user is 400, an unknown local user 404, a malformed id 400', async () => {
    expectError(await asAdmin('GET', userMedia('@someone:elsewhere.example')), 400, 'M_UNKNOWN');
    expectError(await asAdmin('GET', userMedia('@nobody:test.local')), 404, 'M_NOT_FOUND');
    expectError(await asAdmin('GET', userMedia('not-a-user')), 400, 'M_INVALID_PARAM');
  });
});

describe('DELETE /_synapse/admin/v1/users/<user_id>/media', () => {
  it('deletes one page of the listing (newest first): rows, files and thumbnails', async () => {
    const owner = await freshUser();
    const image = await pngImage(64, 64);
    const items = [];
    for (let i = 0; i < 3; i++) {
      const m = await uploadMedia(t, owner, image, { contentType: 'image/png' });
      await setTimes(m.mediaId, 1_700_000_000_000 + i);
      items.push(m);
    }
    // A thumbnail of the newest, so its thumbnail directory exists.
    const thumb = await thumbnail(t, items[2]!.mediaId, 'width=32&height=32&method=crop', { token: owner.accessToken });
    expect(thumb.status).toBe(200);
    expect(exists(localThumbnailDir(t, items[2]!.mediaId))).toBe(true);

    const res = await asAdmin('DELETE', userMedia(owner.userId, '?limit=2'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted_media: [items[2]!.mediaId, items[1]!.mediaId], total: 2 });
    for (const m of [items[2]!, items[1]!]) {
      expect(await row(m.mediaId)).toBeUndefined();
      expect(exists(localContentPath(t, m.mediaId))).toBe(false);
      expect(exists(localThumbnailDir(t, m.mediaId))).toBe(false);
      expect((await download(t, m.mediaId, { token: owner.accessToken })).status).toBe(404);
    }
    expect(await db().selectFrom('local_media_thumbnails').selectAll().where('media_id', '=', items[2]!.mediaId).execute()).toEqual([]);
    // The oldest stays, and is still served.
    expect(exists(localContentPath(t, items[0]!.mediaId))).toBe(true);
    expect((await download(t, items[0]!.mediaId, { token: owner.accessToken })).status).toBe(200);
    const left = await asAdmin('GET', userMedia(owner.userId));
    expect(left.body.total).toBe(1);
  });

  it('a user without media: nothing deleted; unknown users 404', async () => {
    const owner = await freshUser();
    expect((await asAdmin('DELETE', userMedia(owner.userId))).body).toEqual({ deleted_media: [], total: 0 });
    expectError(await asAdmin('DELETE', userMedia('@nobody:test.local')), 404, 'M_NOT_FOUND');
    expectError(await asAdmin('DELETE', userMedia('@x:elsewhere.example')), 400, 'M_UNKNOWN');
    expectError(await asAdmin('DELETE', userMedia(`${owner.userId}`, '?order_by=bad')), 400, 'M_INVALID_PARAM');
  });
});

describe('GET /_synapse/admin/v1/room/<room_id>/media', () => {
  it('lists the mxc URIs of messages, thumbnails and the room avatar, local and remote apart', async () => {
    const owner = await freshUser();
    const roomId = await createRoom(owner.accessToken);
    const img = await uploadMedia(t, owner, 'image bytes', { contentType: 'image/png' });
    const thumb = await uploadMedia(t, owner, 'thumb bytes', { contentType: 'image/png' });
    const avatar = await uploadMedia(t, owner, 'avatar bytes', { contentType: 'image/png' });
    const redacted = await uploadMedia(t, owner, 'redacted bytes');
    await send(owner.accessToken, roomId, { msgtype: 'm.image', body: 'pic', url: img.mxc, info: { thumbnail_url: thumb.mxc } });
    await send(owner.accessToken, roomId, { msgtype: 'm.file', body: 'remote file', url: 'mxc://remote.example/RemoteMediaId' });
    await send(owner.accessToken, roomId, { msgtype: 'm.text', body: 'mxc://test.local/notAnAttachment' });
    const gone = await send(owner.accessToken, roomId, { msgtype: 'm.file', body: 'oops', url: redacted.mxc });
    const r = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(gone)}/rd1`, { token: owner.accessToken, body: {} });
    expect(r.status).toBe(200);
    const st = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.avatar/`, { token: owner.accessToken, body: { url: avatar.mxc } });
    expect(st.status).toBe(200);
    // Not media: a url that is not mxc, and encrypted content.
    await send(owner.accessToken, roomId, { msgtype: 'm.image', body: 'x', url: 'https://example.org/a.png' });
    await send(owner.accessToken, roomId, { algorithm: 'm.megolm.v1.aes-sha2', ciphertext: 'AwgAEn...', sender_key: 'k', session_id: 's', device_id: 'D' }, 'm.room.encrypted');

    const res = await asAdmin('GET', `/_synapse/admin/v1/room/${enc(roomId)}/media`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      local: [img.mxc, thumb.mxc, avatar.mxc].sort(),
      remote: ['mxc://remote.example/RemoteMediaId'],
    });
  });

  it('an unknown room is 404, a malformed room id 400', async () => {
    expectError(await asAdmin('GET', `/_synapse/admin/v1/room/${enc('!unknown:test.local')}/media`), 404, 'M_NOT_FOUND');
    expectError(await asAdmin('GET', `/_synapse/admin/v1/room/${enc('#alias:test.local')}/media`), 400, 'M_INVALID_PARAM');
    expectError(await asAdmin('POST', `/_synapse/admin/v1/room/${enc('nope')}/media/quarantine`), 400, 'M_INVALID_PARAM');
  });
});

describe('quarantine', () => {
  it('quarantining by id hides local media until it is released', async () => {
    const owner = await freshUser();
    const m = await uploadMedia(t, owner, 'quarantine me', { contentType: 'text/plain' });
    const q = await asAdmin('POST', `/_synapse/admin/v1/media/quarantine/test.local/${m.mediaId}`, {});
    expect(q.status).toBe(200);
    expect(q.body).toEqual({});
    expect((await row(m.mediaId))?.quarantined_by).toBe(admin.userId);
    expect((await download(t, m.mediaId, { token: owner.accessToken })).status).toBe(404);
    // The file stays on disk.
    expect(exists(localContentPath(t, m.mediaId))).toBe(true);

    const u = await asAdmin('POST', `/_synapse/admin/v1/media/unquarantine/test.local/${m.mediaId}`, {});
    expect(u.status).toBe(200);
    expect(u.body).toEqual({});
    expect((await row(m.mediaId))?.quarantined_by).toBeNull();
    const got = await download(t, m.mediaId, { token: owner.accessToken });
    expect(got.status).toBe(200);
    expect(got.bytes.toString()).toBe('quarantine me');
  });

  it('quarantines other uploads of the same content too', async () => {
    const [a, b] = [await freshUser(), await freshUser()];
    const first = await uploadMedia(t, a, 'the same bad bytes');
    const copy = await uploadMedia(t, b, 'the same bad bytes');
    const other = await uploadMedia(t, b, 'different bytes');
    await asAdmin('POST', `/_synapse/admin/v1/media/quarantine/test.local/${first.mediaId}`);
    expect((await row(copy.mediaId))?.quarantined_by).toBe(admin.userId);
    expect((await row(other.mediaId))?.quarantined_by).toBeNull();
  });

  it('protected media cannot be quarantined, by id or in bulk; unprotecting lifts that', async () => {
    const owner = await freshUser();
    const m = await uploadMedia(t, owner, 'sticker pack');
    const plain = await uploadMedia(t, owner, 'ordinary');
    expect((await asAdmin('POST', `/_synapse/admin/v1/media/protect/${m.mediaId}`, {})).body).toEqual({});
    expect((await row(m.mediaId))?.safe_from_quarantine).toBe(true);
    const listed = await asAdmin('GET', userMedia(owner.userId, '?order_by=safe_from_quarantine&dir=b'));
    expect((listed.body.media as { media_id: string; safe_from_quarantine: boolean }[])[0]).toMatchObject({ media_id: m.mediaId, safe_from_quarantine: true });

    await asAdmin('POST', `/_synapse/admin/v1/media/quarantine/test.local/${m.mediaId}`);
    expect((await row(m.mediaId))?.quarantined_by).toBeNull();
    const bulk = await asAdmin('POST', `/_synapse/admin/v1/user/${enc(owner.userId)}/media/quarantine`, {});
    expect(bulk.body).toEqual({ num_quarantined: 1 });
    expect((await row(m.mediaId))?.quarantined_by).toBeNull();
    expect((await row(plain.mediaId))?.quarantined_by).toBe(admin.userId);
    expect((await download(t, m.mediaId, { token: owner.accessToken })).status).toBe(200);

    expect((await asAdmin('POST', `/_synapse/admin/v1/media/unprotect/${m.mediaId}`, {})).body).toEqual({});
    expect((await row(m.mediaId))?.safe_from_quarantine).toBe(false);
    await asAdmin('POST', `/_synapse/admin/v1/media/quarantine/test.local/${m.mediaId}`);
    expect((await row(m.mediaId))?.quarantined_by).toBe(admin.userId);
  });

  it("quarantines all of a user's media, answering the count", async () => {
    const owner = await freshUser();
    const items = [await uploadMedia(t, owner, 'one'), await uploadMedia(t, owner, 'two')];
    const bystander = await uploadMedia(t, alice, 'not theirs');
    const res = await asAdmin('POST', `/_synapse/admin/v1/user/${enc(owner.userId)}/media/quarantine`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ num_quarantined: 2 });
    for (const m of items) expect((await row(m.mediaId))?.quarantined_by).toBe(admin.userId);
    expect((await row(bystander.mediaId))?.quarantined_by).toBeNull();
    const nobody = await asAdmin('POST', `/_synapse/admin/v1/user/${enc('@nobody:test.local')}/media/quarantine`);
    expect(nobody.body).toEqual({ num_quarantined: 0 });
    expectError(await asAdmin('POST', '/_synapse/admin/v1/user/nobody/media/quarantine'), 400, 'M_INVALID_PARAM');
  });

  it("quarantines a room's local and cached remote media, skipping protected media (also the legacy path)", async () => {
    const owner = await freshUser();
    const roomId = await createRoom(owner.accessToken);
    const a = await uploadMedia(t, owner, 'room media a');
    const b = await uploadMedia(t, owner, 'room media b');
    const safe = await uploadMedia(t, owner, 'room media safe');
    await asAdmin('POST', `/_synapse/admin/v1/media/protect/${safe.mediaId}`);
    await insertRemoteMedia(t, { origin: 'remote.example', mediaId: 'CachedRoomMedia', filesystemId: 'fsCachedRoomMedia', lastAccessTs: Date.now() });
    await send(owner.accessToken, roomId, { msgtype: 'm.file', body: 'a', url: a.mxc, info: { thumbnail_url: b.mxc } });
    await send(owner.accessToken, roomId, { msgtype: 'm.file', body: 's', url: safe.mxc });
    await send(owner.accessToken, roomId, { msgtype: 'm.file', body: 'r', url: 'mxc://remote.example/CachedRoomMedia' });
    await send(owner.accessToken, roomId, { msgtype: 'm.file', body: 'n', url: 'mxc://remote.example/NotCachedHere' });

    const res = await asAdmin('POST', `/_synapse/admin/v1/room/${enc(roomId)}/media/quarantine`, {});
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ num_quarantined: 3 });
    expect((await row(a.mediaId))?.quarantined_by).toBe(admin.userId);
    expect((await row(b.mediaId))?.quarantined_by).toBe(admin.userId);
    expect((await row(safe.mediaId))?.quarantined_by).toBeNull();
    expect((await remoteRow('remote.example', 'CachedRoomMedia'))?.quarantined_by).toBe(admin.userId);
    expect((await download(t, a.mediaId, { token: owner.accessToken })).status).toBe(404);

    const legacy = await asAdmin('POST', `/_synapse/admin/v1/quarantine_media/${enc(roomId)}`, {});
    expect(legacy.body).toEqual({ num_quarantined: 3 });
  });

  it('quarantines and releases cached remote media by id', async () => {
    await insertRemoteMedia(t, { origin: 'other.example', mediaId: 'RemoteQuarantine', filesystemId: 'fsRemoteQuarantine', lastAccessTs: Date.now() });
    await asAdmin('POST', '/_synapse/admin/v1/media/quarantine/other.example/RemoteQuarantine');
    expect((await remoteRow('other.example', 'RemoteQuarantine'))?.quarantined_by).toBe(admin.userId);
    await asAdmin('POST', '/_synapse/admin/v1/media/unquarantine/other.example/RemoteQuarantine');
    expect((await remoteRow('other.example', 'RemoteQuarantine'))?.quarantined_by).toBeNull();
  });

  it('unknown media: {} as Synapse answers, and nothing is created', async () => {
    for (const path of [
      '/_synapse/admin/v1/media/quarantine/test.local/NoSuchMediaHere',
      '/_synapse/admin/v1/media/unquarantine/other.example/NoSuchMediaHere',
      '/_synapse/admin/v1/media/protect/NoSuchMediaHere',
      '/_synapse/admin/v1/media/unprotect/NoSuchMediaHere',
    ]) {
      const res = await asAdmin('POST', path);
      expect(res.status, path).toBe(200);
      expect(res.body).toEqual({});
    }
    expect(await row('NoSuchMediaHere')).toBeUndefined();
  });
});

describe('GET /_synapse/admin/v1/media/<origin>/<media_id>', () => {
  it('answers local media info', async () => {
    const owner = await freshUser();
    const m = await uploadMedia(t, owner, 'query me', { contentType: 'text/plain', fileName: 'q.txt' });
    await setTimes(m.mediaId, 1_700_000_000_000, 1_700_000_000_500);
    const res = await asAdmin('GET', `/_synapse/admin/v1/media/test.local/${m.mediaId}`);
    expect(res.status).toBe(200);
    const r = await row(m.mediaId);
    expect(res.body).toEqual({
      media_info: {
        media_origin: 'test.local',
        user_id: owner.userId,
        media_id: m.mediaId,
        media_type: 'text/plain',
        media_length: 8,
        upload_name: 'q.txt',
        created_ts: 1_700_000_000_000,
        filesystem_id: m.mediaId,
        url_cache: null,
        last_access_ts: 1_700_000_000_500,
        quarantined_by: null,
        authenticated: r?.authenticated,
        safe_from_quarantine: false,
        sha256: r?.sha256,
      },
    });
    expect(typeof r?.sha256).toBe('string');
  });

  it('answers cached remote media info', async () => {
    await insertRemoteMedia(t, { origin: 'remote.example', mediaId: 'sdginwegWEG', filesystemId: 'wgeweg', lastAccessTs: 400, createdTs: 300, sha256: 'ab'.repeat(32) });
    const res = await asAdmin('GET', '/_synapse/admin/v1/media/remote.example/sdginwegWEG');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      media_info: {
        media_origin: 'remote.example',
        user_id: null,
        media_id: 'sdginwegWEG',
        media_type: 'image/png',
        media_length: 6,
        upload_name: 'remote.png',
        created_ts: 300,
        filesystem_id: 'wgeweg',
        url_cache: null,
        last_access_ts: 400,
        quarantined_by: null,
        authenticated: false,
        safe_from_quarantine: null,
        sha256: 'ab'.repeat(32),
      },
    });
  });

  it('unknown media is 404 (local, remote, and ids that cannot exist)', async () => {
    expectError(await asAdmin('GET', '/_synapse/admin/v1/media/test.local/NoSuchMediaHere'), 404, 'M_NOT_FOUND');
    expectError(await asAdmin('GET', '/_synapse/admin/v1/media/remote.example/NotCached'), 404, 'M_NOT_FOUND');
    expectError(await asAdmin('GET', `/_synapse/admin/v1/media/test.local/${enc('../../etc')}`), 404, 'M_NOT_FOUND');
  });
});

describe('DELETE /_synapse/admin/v1/media/<server_name>/<media_id>', () => {
  it('deletes local media: row, file; then it is unknown', async () => {
    const owner = await freshUser();
    const m = await uploadMedia(t, owner, 'delete me');
    const res = await asAdmin('DELETE', `/_synapse/admin/v1/media/test.local/${m.mediaId}`, {});
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted_media: [m.mediaId], total: 1 });
    expect(await row(m.mediaId)).toBeUndefined();
    expect(exists(localContentPath(t, m.mediaId))).toBe(false);
    expect((await download(t, m.mediaId, { token: owner.accessToken })).status).toBe(404);
    expectError(await asAdmin('DELETE', `/_synapse/admin/v1/media/test.local/${m.mediaId}`), 404, 'M_NOT_FOUND');
  });

  it('another server name is 400 "Can only delete local media"; unknown media 404', async () => {
    const res = await asAdmin('DELETE', '/_synapse/admin/v1/media/remote.example/sdginwegWEG');
    expectError(res, 400, 'M_UNKNOWN');
    expect(res.body.error).toBe('Can only delete local media');
    expectError(await asAdmin('DELETE', '/_synapse/admin/v1/media/test.local/NoSuchMediaHere'), 404, 'M_NOT_FOUND');
  });
});

describe('POST /_synapse/admin/v1/media/delete', () => {
  const OLD = 1_600_000_000_000;
  const CUTOFF = 1_650_000_000_000;

  it('deletes media last used before before_ts, larger than size_gt, keeping avatars, quarantined and protected media', async () => {
    const owner = await freshUser();
    const old = await uploadMedia(t, owner, Buffer.alloc(100, 1));
    const oldSmall = await uploadMedia(t, owner, Buffer.alloc(10, 2));
    const oldButUsed = await uploadMedia(t, owner, Buffer.alloc(100, 3));
    const recent = await uploadMedia(t, owner, Buffer.alloc(100, 4));
    const avatar = await uploadMedia(t, owner, Buffer.alloc(100, 5), { contentType: 'image/png' });
    const roomAvatar = await uploadMedia(t, owner, Buffer.alloc(100, 6), { contentType: 'image/png' });
    const quarantined = await uploadMedia(t, owner, Buffer.alloc(100, 7));
    const protectedOne = await uploadMedia(t, owner, Buffer.alloc(100, 8));
    for (const m of [old, oldSmall, avatar, roomAvatar, quarantined, protectedOne]) await setTimes(m.mediaId, OLD);
    await setTimes(oldButUsed.mediaId, OLD, CUTOFF + 1000);
    await setTimes(recent.mediaId, CUTOFF + 1000);
    const p = await api(t, 'PUT', `/_matrix/client/v3/profile/${enc(owner.userId)}/avatar_url`, { token: owner.accessToken, body: { avatar_url: avatar.mxc } });
    expect(p.status).toBe(200);
    const roomId = await createRoom(owner.accessToken);
    const st = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.avatar/`, { token: owner.accessToken, body: { url: roomAvatar.mxc } });
    expect(st.status).toBe(200);
    await asAdmin('POST', `/_synapse/admin/v1/media/quarantine/test.local/${quarantined.mediaId}`);
    await asAdmin('POST', `/_synapse/admin/v1/media/protect/${protectedOne.mediaId}`);
    // Earlier tests' media (some with old times) is kept out of the way.
    await db().updateTable('local_media').set({ created_ts: Date.now(), last_access_ts: null }).where('user_id', '!=', owner.userId).execute();

    const res = await asAdmin('POST', `/_synapse/admin/v1/media/delete?before_ts=${CUTOFF}&size_gt=50`, {});
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted_media: [old.mediaId], total: 1 });
    expect(exists(localContentPath(t, old.mediaId))).toBe(false);
    for (const m of [oldSmall, oldButUsed, recent, avatar, roomAvatar, quarantined, protectedOne]) expect(await row(m.mediaId)).toBeDefined();

    // keep_profiles=false: avatars go too (via the deprecated path naming this server).
    const res2 = await asAdmin('POST', `/_synapse/admin/v1/media/test.local/delete?before_ts=${CUTOFF}&keep_profiles=false`, {});
    expect(res2.status).toBe(200);
    expect([...(res2.body.deleted_media as string[])].sort()).toEqual([oldSmall.mediaId, avatar.mediaId, roomAvatar.mediaId].sort());
    expect(res2.body.total).toBe(3);
    for (const m of [oldButUsed, recent, quarantined, protectedOne]) expect(await row(m.mediaId)).toBeDefined();
  });

  it.each([
    ['', 'M_MISSING_PARAM'],
    ['?before_ts=soon', 'M_INVALID_PARAM'],
    ['?before_ts=-1', 'M_INVALID_PARAM'],
    ['?before_ts=1234', 'M_INVALID_PARAM'],
    ['?before_ts=1700000000000&size_gt=-1', 'M_INVALID_PARAM'],
    ['?before_ts=1700000000000&size_gt=big', 'M_INVALID_PARAM'],
    ['?before_ts=1700000000000&keep_profiles=perhaps', 'M_INVALID_PARAM'],
  ])('POST /media/delete%s is 400 %s and deletes nothing', async (query, errcode) => {
    const count = async () =>
      Number(
        (
          await db()
            .selectFrom('local_media')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await count();
    expectError(await asAdmin('POST', `/_synapse/admin/v1/media/delete${query}`), 400, errcode);
    expect(await count()).toBe(before);
  });

  it('the year-1970 check explains itself', async () => {
    const res = await asAdmin('POST', '/_synapse/admin/v1/media/delete?before_ts=1234');
    expect(res.body.error).toMatch(/year 1970/);
  });

  it('the deprecated path refuses another server name', async () => {
    const res = await asAdmin('POST', '/_synapse/admin/v1/media/remote.example/delete?before_ts=1700000000000');
    expectError(res, 400, 'M_UNKNOWN');
    expect(res.body.error).toBe('Can only delete local media');
  });
});

describe('POST /_synapse/admin/v1/purge_media_cache', () => {
  it('removes cached remote media last accessed before before_ts (rows and files), keeping newer and quarantined copies', async () => {
    const now = Date.now();
    const old = await insertRemoteMedia(t, { origin: 'cache.example', mediaId: 'OldCachedMedia', filesystemId: 'fsOldCachedMedia', lastAccessTs: now - 100_000 });
    const never = await insertRemoteMedia(t, { origin: 'cache.example', mediaId: 'NeverAccessed', filesystemId: 'fsNeverAccessed', lastAccessTs: null, createdTs: now - 100_000 });
    const fresh = await insertRemoteMedia(t, { origin: 'cache.example', mediaId: 'FreshCachedMedia', filesystemId: 'fsFreshCachedMedia', lastAccessTs: now });
    const kept = await insertRemoteMedia(t, {
      origin: 'cache.example',
      mediaId: 'QuarantinedCache',
      filesystemId: 'fsQuarantinedCache',
      lastAccessTs: now - 100_000,
      quarantinedBy: admin.userId,
    });
    const count = async () =>
      Number(
        (
          await db()
            .selectFrom('remote_media')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await count();

    const res = await asAdmin('POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${now - 50_000}`, {});
    expect(res.status).toBe(200);
    // Older copies from earlier tests go too: the count is what left the table.
    expect(res.body.deleted).toBe(before - (await count()));
    expect(res.body.deleted).toBeGreaterThanOrEqual(2);
    expect(await remoteRow('cache.example', 'OldCachedMedia')).toBeUndefined();
    expect(await remoteRow('cache.example', 'NeverAccessed')).toBeUndefined();
    for (const f of [old.file, old.thumbnailDir, never.file]) expect(exists(f)).toBe(false);
    expect(await remoteRow('cache.example', 'FreshCachedMedia')).toBeDefined();
    expect(await remoteRow('cache.example', 'QuarantinedCache')).toBeDefined();
    for (const f of [fresh.file, fresh.thumbnailDir, kept.file]) expect(exists(f)).toBe(true);

    // Nothing older left: a second purge deletes nothing.
    expect((await asAdmin('POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${now - 50_000}`)).body).toEqual({ deleted: 0 });
  });

  it.each([
    ['', 'M_MISSING_PARAM'],
    ['?before_ts=yesterday', 'M_INVALID_PARAM'],
    ['?before_ts=-5', 'M_INVALID_PARAM'],
    ['?before_ts=1000', 'M_INVALID_PARAM'],
  ])('purge_media_cache%s is 400 %s', async (query, errcode) => {
    expectError(await asAdmin('POST', `/_synapse/admin/v1/purge_media_cache${query}`), 400, errcode);
  });
});
