/**
 * Media downloads: the authenticated endpoints and the legacy ones (frozen
 * for media uploaded with enable_authenticated_media on), the headers
 * (inline only for safe types, file names per RFC 6266, sandboxing),
 * byte ranges, and refusals (remote, quarantined, hostile ids).
 */
import { describe, expect, it } from 'vitest';
import { useServerWith, useServerWithUsers } from '../helpers/rooms.js';
import { createGuest } from '../helpers/sessions.js';
import { download, pngImage, rawRequest, upload } from '../helpers/media-http.js';

const CSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

const { t, alice } = useServerWithUsers('alice');

const db = () => t.server.ctx.database.db;

async function stored(body: Buffer | string, contentType: string, filename?: string): Promise<string> {
  const res = await upload(t, alice.accessToken, body, { contentType, filename });
  expect(res.status).toBe(200);
  return res.mediaId;
}

describe('GET /_matrix/client/v1/media/download', () => {
  it('serves the bytes with the stored type, inline for an image, and the sandboxing headers', async () => {
    const png = await pngImage(8, 8);
    const id = await stored(png, 'image/png', 'pic.png');
    const res = await download(t, id, { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.bytes).toEqual(png);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-disposition')).toBe('inline; filename=pic.png');
    expect(res.headers.get('content-length')).toBe(String(png.length));
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toBe(CSP);
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(res.headers.get('cache-control')).toBe('public,max-age=86400,s-maxage=86400');
  });

  it('needs an access token; guests may download', async () => {
    const id = await stored('secret', 'text/plain');
    const none = await download(t, id);
    expect(none.status).toBe(401);
    expect(none.json.errcode).toBe('M_MISSING_TOKEN');
    const guest = await createGuest(t);
    expect((await download(t, id, { token: guest.accessToken })).status).toBe(200);
  });

  it('serves unsafe types as attachment (HTML, SVG, octet-stream)', async () => {
    for (const type of ['text/html', 'image/svg+xml', 'application/octet-stream', 'application/javascript']) {
      const id = await stored('<script>alert(1)</script>', type, 'x');
      const res = await download(t, id, { token: alice.accessToken });
      expect(res.headers.get('content-disposition'), type).toBe('attachment; filename=x');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('adds a UTF-8 charset to text types that lack one, and keeps a given one', async () => {
    const plain = await stored('héllo', 'text/plain');
    const res = await download(t, plain, { token: alice.accessToken });
    expect(res.headers.get('content-type')).toBe('text/plain; charset=UTF-8');
    expect(res.headers.get('content-disposition')).toBe('inline');
    const latin = await stored('x', 'text/csv; charset=ISO-8859-1');
    expect((await download(t, latin, { token: alice.accessToken })).headers.get('content-type')).toBe('text/csv; charset=ISO-8859-1');
  });

  it('serves content that lies about being an image (HTML as image/png) as an attachment, with its stored type', async () => {
    const id = await stored('<html><script>alert(1)</script></html>', 'image/png', 'evil.png');
    const res = await download(t, id, { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename=evil.png');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('encodes file names per RFC 6266: bare token, quoted ASCII, filename* for the rest', async () => {
    const cases: [string, string][] = [
      ['report-2024.pdf', 'filename=report-2024.pdf'],
      ['War and Peace.txt', 'filename="War and Peace.txt"'],
      ['say "hi".txt', `filename*=utf-8''say%20%22hi%22.txt`],
      ['Ünïcødé 文件.txt', `filename*=utf-8''${encodeURIComponent('Ünïcødé 文件.txt')}`],
      ["it's (1).txt", `filename="it's (1).txt"`],
      ['back\\slash.txt', `filename*=utf-8''back%5Cslash.txt`],
      ['tab\there.txt', `filename*=utf-8''tab%09here.txt`],
    ];
    for (const [name, param] of cases) {
      const id = await stored('x', 'text/plain', name);
      const res = await download(t, id, { token: alice.accessToken });
      expect(res.headers.get('content-disposition'), name).toBe(`inline; ${param}`);
    }
  });

  it('takes the file name from the URL when one is given', async () => {
    const id = await stored('x', 'text/plain', 'original.txt');
    const res = await download(t, id, { token: alice.accessToken, fileName: 'renamed é.txt' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(`inline; filename*=utf-8''${encodeURIComponent('renamed é.txt')}`);
    const legacy = await download(t, id, { legacy: true, fileName: 'other.txt' });
    // Authenticated media is on: the legacy endpoint refuses it either way.
    expect(legacy.status).toBe(404);
  });

  it('serves byte ranges (206) and refuses unsatisfiable ones (416)', async () => {
    const body = Buffer.from('0123456789abcdefghij');
    const id = await stored(body, 'application/octet-stream');
    const mid = await download(t, id, { token: alice.accessToken, headers: { range: 'bytes=5-9' } });
    expect(mid.status).toBe(206);
    expect(mid.bytes.toString()).toBe('56789');
    expect(mid.headers.get('content-range')).toBe('bytes 5-9/20');
    const tail = await download(t, id, { token: alice.accessToken, headers: { range: 'bytes=-3' } });
    expect(tail.bytes.toString()).toBe('hij');
    const open = await download(t, id, { token: alice.accessToken, headers: { range: 'bytes=18-' } });
    expect(open.bytes.toString()).toBe('ij');
    const bad = await download(t, id, { token: alice.accessToken, headers: { range: 'bytes=50-60' } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe('bytes */20');
    // Several ranges are not honoured: the whole file.
    const multi = await download(t, id, { token: alice.accessToken, headers: { range: 'bytes=0-1,5-6' } });
    expect(multi.status).toBe(200);
    expect(multi.bytes).toEqual(body);
  });

  it('answers HEAD with the headers and no body', async () => {
    const id = await stored('twelve bytes', 'text/plain');
    const res = await download(t, id, { token: alice.accessToken, method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('12');
    expect(res.bytes.length).toBe(0);
  });

  it('404 M_NOT_FOUND for unknown media; a local id under another server name is asked of that server (federation-media.test.ts)', async () => {
    const unknown = await download(t, 'abcdefghijklmnopqrstuvwx', { token: alice.accessToken });
    expect(unknown.status).toBe(404);
    expect(unknown.json.errcode).toBe('M_NOT_FOUND');
    const id = await stored('x', 'text/plain');
    const remote = await download(t, id, { token: alice.accessToken, server: 'localhost:1' });
    expect(remote.status).toBe(502);
    expect(remote.json).toEqual({ errcode: 'M_UNKNOWN', error: 'Failed to fetch remote media' });
  });

  it('404 M_NOT_FOUND for hostile ids and server names, never a file outside the store', async () => {
    const paths = [
      '/_matrix/client/v1/media/download/test.local/..%2F..%2F..%2Fetc%2Fpasswd',
      '/_matrix/client/v1/media/download/test.local/%2e%2e%2f%2e%2e%2fhomeserver.yaml',
      '/_matrix/client/v1/media/download/test.local/abc.def',
      '/_matrix/client/v1/media/download/test.local/abc%00def',
      `/_matrix/client/v1/media/download/test.local/${'a'.repeat(300)}`,
      '/_matrix/client/v1/media/download/..%2F..%2Fetc/passwd',
      '/_matrix/client/v1/media/download/test.local%2F..%2F../abcdefghijklmnopqrstuvwx',
      '/_matrix/media/v3/download/test.local/..%2Fhomeserver.yaml',
    ];
    for (const path of paths) {
      const res = await rawRequest(t, 'GET', path, { token: alice.accessToken });
      expect(res.status, path).toBe(404);
      expect(res.json.errcode, path).toBe('M_NOT_FOUND');
    }
  });

  it('404 for quarantined media, served again once released', async () => {
    const id = await stored('bad', 'text/plain');
    const repo = t.server.ctx.services.media;
    expect(await repo.quarantineLocal(id, '@admin:test.local')).toBe(true);
    const res = await download(t, id, { token: alice.accessToken });
    expect(res.status).toBe(404);
    expect(res.json.errcode).toBe('M_NOT_FOUND');
    expect(await repo.quarantineLocal(id, null)).toBe(true);
    expect((await download(t, id, { token: alice.accessToken })).status).toBe(200);
  });

  it('updates last_access_ts when it is stale', async () => {
    const id = await stored('x', 'text/plain');
    await db().updateTable('local_media').set({ last_access_ts: 1000 }).where('media_id', '=', id).execute();
    await download(t, id, { token: alice.accessToken });
    const row = await db().selectFrom('local_media').select('last_access_ts').where('media_id', '=', id).executeTakeFirstOrThrow();
    expect(Number(row.last_access_ts)).toBeGreaterThan(1000);
  });
});

describe('legacy GET /_matrix/media/v3/download with enable_authenticated_media on (the default)', () => {
  it('refuses media uploaded while it was on (404), serves media from before without a token', async () => {
    const id = await stored('after the freeze', 'text/plain');
    for (const prefix of ['/_matrix/media/v3', '/_matrix/media/r0']) {
      const res = await rawRequest(t, 'GET', `${prefix}/download/test.local/${id}`);
      expect(res.status, prefix).toBe(404);
      expect(res.json.errcode).toBe('M_NOT_FOUND');
    }
    // Media from before the freeze (as Synapse marks it: authenticated false).
    const old = await stored('before the freeze', 'text/plain');
    await db().updateTable('local_media').set({ authenticated: false }).where('media_id', '=', old).execute();
    const res = await download(t, old, { legacy: true });
    expect(res.status).toBe(200);
    expect(res.bytes.toString()).toBe('before the freeze');
    expect(res.headers.get('content-security-policy')).toBe(CSP);
  });
});

describe('with enable_authenticated_media: false', () => {
  const { t: open, bob } = useServerWith({ yaml: { enable_authenticated_media: false } }, 'bob');

  it('marks uploads as not authenticated-only and serves them on the legacy endpoints without a token', async () => {
    const up = await upload(open, bob.accessToken, 'open media', { contentType: 'text/plain' });
    expect(up.status).toBe(200);
    const row = await open.server.ctx.database.db.selectFrom('local_media').select('authenticated').where('media_id', '=', up.mediaId).executeTakeFirstOrThrow();
    expect(row.authenticated).toBe(false);
    const legacy = await download(open, up.mediaId, { legacy: true });
    expect(legacy.status).toBe(200);
    expect(legacy.bytes.toString()).toBe('open media');
    // The authenticated endpoint still wants a token.
    expect((await download(open, up.mediaId)).status).toBe(401);
    expect((await download(open, up.mediaId, { token: bob.accessToken })).status).toBe(200);
  });

  it('serves media uploaded while authenticated media was on, once it is off (as Synapse)', async () => {
    const up = await upload(open, bob.accessToken, 'was frozen', { contentType: 'text/plain' });
    await open.server.ctx.database.db.updateTable('local_media').set({ authenticated: true }).where('media_id', '=', up.mediaId).execute();
    expect((await download(open, up.mediaId, { legacy: true })).status).toBe(200);
  });
});
