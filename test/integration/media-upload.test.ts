/**
 * Media uploads: POST /upload (streamed to disk in Synapse's layout, any
 * body type, the size limit leaving nothing behind), POST /create + PUT
 * (only the creator, only once, the pending limit, expiry, waiting
 * downloads), and the config endpoints.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useServerWith } from '../helpers/rooms.js';
import { createGuest, eventually } from '../helpers/sessions.js';
import { api, createUser, type TestUser } from '../helpers/users.js';
import { download, filesUnder, localContentPath, rawRequest, upload } from '../helpers/media-http.js';

const LIMIT = 4096;

const { t, alice, bob } = useServerWith({ yaml: { max_upload_size: LIMIT, max_pending_media_uploads: 2 } }, 'alice', 'bob');

const db = () => t.server.ctx.database.db;
const row = (mediaId: string) => db().selectFrom('local_media').selectAll().where('media_id', '=', mediaId).executeTakeFirst();
const store = () => t.config.media_store_path;

describe('POST /_matrix/media/v3/upload', () => {
  it('stores the bytes at Synapse path and answers an mxc URI with a 24-letter id', async () => {
    const body = Buffer.from('hello, media repository\n');
    const res = await upload(t, alice.accessToken, body, { contentType: 'text/plain', filename: 'hello.txt' });
    expect(res.status).toBe(200);
    expect(res.json.content_uri).toMatch(/^mxc:\/\/test\.local\/[A-Za-z]{24}$/);
    const path = localContentPath(t, res.mediaId);
    expect(readFileSync(path)).toEqual(body);
    const r = await row(res.mediaId);
    expect(r).toMatchObject({
      media_type: 'text/plain',
      upload_name: 'hello.txt',
      user_id: alice.userId,
      authenticated: true,
      quarantined_by: null,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
    expect(Number(r?.media_length)).toBe(body.length);
    // Nothing left in incoming/.
    expect(filesUnder(join(store(), 'incoming'))).toEqual([]);
  });

  it('round-trips binary bytes exactly, on r0 and v1 paths too', async () => {
    const body = Buffer.alloc(3000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7919) % 256;
    for (const prefix of ['/_matrix/media/r0', '/_matrix/media/v1']) {
      const res = await upload(t, alice.accessToken, body, { contentType: 'application/octet-stream', prefix });
      expect(res.status).toBe(200);
      const got = await download(t, res.mediaId, { token: alice.accessToken });
      expect(got.status).toBe(200);
      expect(got.bytes).toEqual(body);
    }
  });

  it('never parses the body: invalid JSON with a JSON type is stored as it came', async () => {
    const body = '{"truncated": ';
    const res = await upload(t, alice.accessToken, body, { contentType: 'application/json' });
    expect(res.status).toBe(200);
    const got = await download(t, res.mediaId, { token: alice.accessToken });
    expect(got.bytes.toString()).toBe(body);
    expect(got.headers.get('content-type')).toBe('application/json');
  });

  it('defaults the type to application/octet-stream and keeps no name when none is given', async () => {
    const res = await rawRequest(t, 'POST', '/_matrix/media/v3/upload', { token: alice.accessToken, body: Buffer.from([1, 2, 3]) });
    expect(res.status).toBe(200);
    const id = String(res.json.content_uri).split('/').pop()!;
    // fetch sends no Content-Type for a Buffer body.
    expect(await row(id)).toMatchObject({ media_type: 'application/octet-stream', upload_name: null });
    const got = await download(t, id, { token: alice.accessToken });
    expect(got.headers.get('content-type')).toBe('application/octet-stream');
    expect(got.headers.get('content-disposition')).toBe('attachment');
  });

  it('accepts an empty upload', async () => {
    const res = await upload(t, alice.accessToken, '', { contentType: 'text/plain' });
    expect(res.status).toBe(200);
    const got = await download(t, res.mediaId, { token: alice.accessToken });
    expect(got.status).toBe(200);
    expect(got.bytes.length).toBe(0);
    expect(got.headers.get('content-length')).toBe('0');
  });

  it('streams a chunked body (no Content-Length)', async () => {
    const parts = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(500, 3)];
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(p);
        c.close();
      },
    });
    const res = await upload(t, alice.accessToken, stream, { contentType: 'application/octet-stream' });
    expect(res.status).toBe(200);
    expect(readFileSync(localContentPath(t, res.mediaId))).toEqual(Buffer.concat(parts));
  });

  it('removes the partial file when the client goes away mid-upload, and records nothing', async () => {
    const rows = (await db().selectFrom('local_media').select('media_id').execute()).length;
    const files = filesUnder(join(store(), 'local_content')).length;
    const abort = new AbortController();
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(Buffer.alloc(1000, 1)); // and then nothing more, until the abort
      },
    });
    const sent = fetch(`${t.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'application/octet-stream' },
      body: stream,
      duplex: 'half',
      signal: abort.signal,
    } as RequestInit).catch((e: Error) => e);
    // The server has started writing the upload...
    await eventually(async () => filesUnder(join(store(), 'incoming')).length === 1);
    abort.abort();
    expect(await sent).toBeInstanceOf(Error);
    // ...and removes it once the client is gone.
    await eventually(async () => filesUnder(join(store(), 'incoming')).length === 0);
    expect(filesUnder(join(store(), 'local_content')).length).toBe(files);
    expect((await db().selectFrom('local_media').select('media_id').execute()).length).toBe(rows);
  });

  it('clears partial uploads a crash left in incoming/ (older than an hour), not fresh ones', async () => {
    const incoming = join(store(), 'incoming');
    mkdirSync(incoming, { recursive: true });
    writeFileSync(join(incoming, 'left-by-a-crash'), 'partial');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(join(incoming, 'left-by-a-crash'), twoHoursAgo, twoHoursAgo);
    writeFileSync(join(incoming, 'in-progress'), 'partial');
    expect(await t.server.ctx.services.media.sweepIncoming()).toBe(1);
    expect(filesUnder(incoming)).toEqual(['in-progress']);
    expect(await t.server.ctx.services.media.sweepIncoming(0)).toBe(1);
    expect(filesUnder(incoming)).toEqual([]);
  });

  it('keeps unicode and quotes in file names', async () => {
    const name = 'Ünïcødé "quoted" 文件.txt';
    const res = await upload(t, alice.accessToken, 'x', { contentType: 'text/plain', filename: name });
    expect(res.status).toBe(200);
    expect((await row(res.mediaId))?.upload_name).toBe(name);
  });

  it('refuses a file name with U+0000 (400) and stores nothing', async () => {
    const before = filesUnder(join(store(), 'local_content')).length;
    const res = await rawRequest(t, 'POST', '/_matrix/media/v3/upload?filename=a%00b', { token: alice.accessToken, body: 'x', headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(400);
    expect(res.json.errcode).toBe('M_INVALID_PARAM');
    expect(filesUnder(join(store(), 'local_content')).length).toBe(before);
  });

  it('needs an access token, and not a guest one', async () => {
    const none = await upload(t, undefined, 'x', { contentType: 'text/plain' });
    expect(none.status).toBe(401);
    expect(none.json.errcode).toBe('M_MISSING_TOKEN');
    const bad = await upload(t, 'not-a-token', 'x', { contentType: 'text/plain' });
    expect(bad.status).toBe(401);
    expect(bad.json.errcode).toBe('M_UNKNOWN_TOKEN');
    const guest = await createGuest(t);
    const g = await upload(t, guest.accessToken, 'x', { contentType: 'text/plain' });
    expect(g.status).toBe(403);
    expect(g.json.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });

  it('accepts exactly max_upload_size bytes', async () => {
    const res = await upload(t, alice.accessToken, Buffer.alloc(LIMIT, 7), { contentType: 'application/octet-stream' });
    expect(res.status).toBe(200);
    expect(readFileSync(localContentPath(t, res.mediaId)).length).toBe(LIMIT);
  });

  describe('over max_upload_size', () => {
    async function expectNothingStored(run: () => Promise<{ status: number; json: Record<string, unknown> }>) {
      const files = filesUnder(join(store(), 'local_content')).length;
      const rows = (await db().selectFrom('local_media').select('media_id').execute()).length;
      const res = await run();
      expect(res.status).toBe(413);
      expect(res.json.errcode).toBe('M_TOO_LARGE');
      expect(filesUnder(join(store(), 'incoming'))).toEqual([]);
      expect(filesUnder(join(store(), 'local_content')).length).toBe(files);
      expect((await db().selectFrom('local_media').select('media_id').execute()).length).toBe(rows);
    }

    it('413 M_TOO_LARGE from the declared Content-Length, nothing stored', async () => {
      await expectNothingStored(() => upload(t, alice.accessToken, Buffer.alloc(LIMIT + 1), { contentType: 'application/octet-stream' }));
    });

    it('413 M_TOO_LARGE while streaming a chunked body, the partial file removed', async () => {
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 5; i++) c.enqueue(Buffer.alloc(1024, i));
          c.close();
        },
      });
      await expectNothingStored(() => upload(t, alice.accessToken, stream, { contentType: 'application/octet-stream' }));
    });
  });
});

describe('POST /_matrix/media/v1/create and PUT /_matrix/media/v3/upload/{serverName}/{mediaId}', () => {
  const put = (u: TestUser | undefined, server: string, id: string, body: string | Buffer, contentType = 'text/plain', filename?: string) =>
    rawRequest(t, 'PUT', `/_matrix/media/v3/upload/${server}/${id}${filename ? `?filename=${encodeURIComponent(filename)}` : ''}`, {
      token: u?.accessToken,
      body,
      headers: { 'content-type': contentType },
    });

  async function create(u: TestUser): Promise<{ id: string; expires: number }> {
    const res = await api(t, 'POST', '/_matrix/media/v1/create', { token: u.accessToken });
    expect(res.status).toBe(200);
    return { id: String(res.body.content_uri).split('/').pop()!, expires: Number(res.body.unused_expires_at) };
  }

  it('reserves an mxc URI that expires in 24 hours, then takes its content once, from its creator', async () => {
    const before = Date.now();
    const res = await api(t, 'POST', '/_matrix/media/v1/create', { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.content_uri).toMatch(/^mxc:\/\/test\.local\/[A-Za-z]{24}$/);
    const expires = Number(res.body.unused_expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 24 * 3600 * 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 24 * 3600 * 1000);
    const id = String(res.body.content_uri).split('/').pop()!;

    const other = await put(bob, 'test.local', id, 'not yours');
    expect(other.status).toBe(403);
    expect(other.json.errcode).toBe('M_FORBIDDEN');

    const ok = await put(alice, 'test.local', id, 'reserved content', 'text/plain', 'later.txt');
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({});
    expect(readFileSync(localContentPath(t, id), 'utf8')).toBe('reserved content');
    expect(await row(id)).toMatchObject({ media_type: 'text/plain', upload_name: 'later.txt', unused_expires_at: null });

    const again = await put(alice, 'test.local', id, 'overwrite');
    expect(again.status).toBe(409);
    expect(again.json.errcode).toBe('M_CANNOT_OVERWRITE_MEDIA');
    expect(readFileSync(localContentPath(t, id), 'utf8')).toBe('reserved content');

    const got = await download(t, id, { token: bob.accessToken });
    expect(got.bytes.toString()).toBe('reserved content');
  });

  it('refuses PUT to media uploaded directly (409) and to unknown ids (404)', async () => {
    const direct = await upload(t, alice.accessToken, 'direct', { contentType: 'text/plain' });
    expect((await put(alice, 'test.local', direct.mediaId, 'x')).json.errcode).toBe('M_CANNOT_OVERWRITE_MEDIA');
    const unknown = await put(alice, 'test.local', 'abcdefghijklmnopqrstuvwx', 'x');
    expect(unknown.status).toBe(404);
    expect(unknown.json.errcode).toBe('M_NOT_FOUND');
  });

  it('refuses another server name and hostile ids with 404 M_NOT_FOUND', async () => {
    const { id } = await create(alice);
    for (const [server, mediaId] of [
      ['other.example', id],
      ['test.local', '..%2F..%2Fetc'],
      ['test.local', 'a.b'],
      ['test.local', 'x'.repeat(300)],
    ] as const) {
      const res = await put(alice, server, mediaId, 'x');
      expect(res.status, `${server}/${mediaId}`).toBe(404);
      expect(res.json.errcode).toBe('M_NOT_FOUND');
    }
    // Still usable afterwards.
    expect((await put(alice, 'test.local', id, 'fine')).status).toBe(200);
  });

  it('needs an access token', async () => {
    expect((await api(t, 'POST', '/_matrix/media/v1/create')).status).toBe(401);
    const { id } = await create(alice);
    expect((await put(undefined, 'test.local', id, 'x')).status).toBe(401);
    expect((await put(alice, 'test.local', id, 'x')).status).toBe(200);
  });

  it('limits pending reservations per user (429 M_LIMIT_EXCEEDED), counting only unfilled, unexpired ones', async () => {
    const carol = await createUser(t, 'carol');
    const first = await create(carol);
    await create(carol);
    const third = await api(t, 'POST', '/_matrix/media/v1/create', { token: carol.accessToken });
    expect(third.status).toBe(429);
    expect(third.body.errcode).toBe('M_LIMIT_EXCEEDED');
    expect(Number(third.body.retry_after_ms)).toBeGreaterThan(0);
    // Others are not affected.
    await create(bob);
    // Filling one frees a slot.
    expect((await put(carol, 'test.local', first.id, 'filled')).status).toBe(200);
    const more = await create(carol);
    // An expired reservation frees a slot too (and can no longer be filled).
    await db()
      .updateTable('local_media')
      .set({ unused_expires_at: Date.now() - 1 })
      .where('media_id', '=', more.id)
      .execute();
    await create(carol);
    const expired = await put(carol, 'test.local', more.id, 'too late');
    expect(expired.status).toBe(404);
    expect(expired.json.errcode).toBe('M_NOT_FOUND');
  });

  it('413 for a PUT over the limit, and the reservation stays usable', async () => {
    const dave = await createUser(t, 'dave');
    const { id } = await create(dave);
    const big = await put(dave, 'test.local', id, Buffer.alloc(LIMIT + 10), 'application/octet-stream');
    expect(big.status).toBe(413);
    expect(big.json.errcode).toBe('M_TOO_LARGE');
    expect(filesUnder(join(store(), 'incoming'))).toEqual([]);
    expect((await row(id))?.media_length).toBeNull();
    expect((await put(dave, 'test.local', id, 'small')).status).toBe(200);
  });

  it('a download of a reservation waits timeout_ms, then 504 M_NOT_YET_UPLOADED', async () => {
    const erin = await createUser(t, 'erin');
    const { id } = await create(erin);
    const res = await download(t, id, { token: erin.accessToken, query: '?timeout_ms=300' });
    expect(res.status).toBe(504);
    expect(res.json.errcode).toBe('M_NOT_YET_UPLOADED');
    // Reserved while authenticated media is on: the legacy endpoint does not serve it at all.
    const legacy = await download(t, id, { query: '?timeout_ms=300', legacy: true });
    expect(legacy.status).toBe(404);
    expect(legacy.json.errcode).toBe('M_NOT_FOUND');
    const thumb = await rawRequest(t, 'GET', `/_matrix/client/v1/media/thumbnail/test.local/${id}?width=32&height=32&timeout_ms=0`, { token: erin.accessToken });
    expect(thumb.status).toBe(504);
    expect(thumb.json.errcode).toBe('M_NOT_YET_UPLOADED');
  });

  it('a waiting download gets the content as soon as it is put', async () => {
    const frank = await createUser(t, 'frank');
    const { id } = await create(frank);
    const waiting = download(t, id, { token: bob.accessToken, query: '?timeout_ms=30000' });
    // Let the download start waiting before the content arrives.
    await new Promise((r) => setTimeout(r, 200));
    expect((await put(frank, 'test.local', id, 'worth the wait')).status).toBe(200);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.bytes.toString()).toBe('worth the wait');
  });

  it('an expired reservation is not found for downloads', async () => {
    const gina = await createUser(t, 'gina');
    const { id } = await create(gina);
    await db()
      .updateTable('local_media')
      .set({ unused_expires_at: Date.now() - 1 })
      .where('media_id', '=', id)
      .execute();
    const res = await download(t, id, { token: gina.accessToken, query: '?timeout_ms=5000' });
    expect(res.status).toBe(404);
    expect(res.json.errcode).toBe('M_NOT_FOUND');
  });

  it('rejects a bad timeout_ms (400 M_INVALID_PARAM)', async () => {
    const res = await download(t, 'abcdefghijklmnopqrstuvwx', { token: alice.accessToken, query: '?timeout_ms=soon' });
    expect(res.status).toBe(400);
    expect(res.json.errcode).toBe('M_INVALID_PARAM');
  });
});

describe('GET media config', () => {
  it('answers m.upload.size on the authenticated and legacy endpoints, with a token', async () => {
    for (const path of ['/_matrix/client/v1/media/config', '/_matrix/media/v3/config', '/_matrix/media/r0/config']) {
      const res = await api(t, 'GET', path, { token: alice.accessToken });
      expect(res.status, path).toBe(200);
      expect(res.body).toEqual({ 'm.upload.size': LIMIT });
      const anon = await api(t, 'GET', path);
      expect(anon.status, path).toBe(401);
      expect(anon.body.errcode).toBe('M_MISSING_TOKEN');
    }
  });
});
