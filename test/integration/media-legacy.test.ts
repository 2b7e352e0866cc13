/**
 * The legacy media API (/_matrix/media/{r0,v3}) that older clients and bots
 * (matrix-nio before 0.25, say) still use, on the real server:
 * - with enable_authenticated_media: false, every legacy endpoint works as
 *   such a client expects: upload, then download and thumbnails without an
 *   access token, config and URL previews with one;
 * - with the default (true, as Synapse >= 1.120), legacy uploads still work
 *   and the authenticated endpoints serve them, but the legacy download and
 *   thumbnail endpoints answer 404 M_NOT_FOUND for them, as Synapse does.
 * One server per mode, and a local web page for the previews.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pngImage, rawRequest, type RawResponse, upload } from '../helpers/media-http.js';
import { useServerWith } from '../helpers/rooms.js';
import { type TestServer } from '../helpers/server.js';
import { api } from '../helpers/users.js';

const LEGACY = ['/_matrix/media/r0', '/_matrix/media/v3'] as const;
const AUTHENTICATED = '/_matrix/client/v1/media';
const MAX_UPLOAD = 5 * 1024 * 1024;

let png: Buffer;
let web: Server;
let pageUrl: string;

beforeAll(async () => {
  png = await pngImage(64, 48);
  web = createServer((req, res) => {
    if (req.url === '/page') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<html><head><meta property="og:title" content="Legacy preview"><meta property="og:image" content="/pic.png"></head></html>');
    } else if (req.url === '/pic.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.end(png);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}/page`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => (web ? web.close(() => resolve()) : resolve()));
});

/** Previews on, with loopback blacklisted as in production and only the test page's address let through. */
const PREVIEWS = {
  url_preview_enabled: true,
  url_preview_ip_range_blacklist: ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '::1/128'],
  url_preview_ip_range_whitelist: ['127.0.0.1'],
};

const get = (t: TestServer, path: string, token?: string): Promise<RawResponse> => rawRequest(t, 'GET', path, { token });

async function imageSize(bytes: Buffer): Promise<{ format?: string; width?: number; height?: number }> {
  const { format, width, height } = await sharp(bytes).metadata();
  return { format, width, height };
}

function expectNotFound(res: RawResponse, what: string): void {
  expect(res.status, what).toBe(404);
  expect(res.json.errcode, what).toBe('M_NOT_FOUND');
}

describe('with enable_authenticated_media: false', () => {
  const { t, alice } = useServerWith({ yaml: { enable_authenticated_media: false, max_upload_size: MAX_UPLOAD, ...PREVIEWS } }, 'alice');

  it.each(LEGACY)('uploads on %s/upload, then downloads on every legacy path without a token', async (prefix) => {
    const body = `uploaded on ${prefix}`;
    const up = await upload(t, alice.accessToken, body, { contentType: 'text/plain', filename: 'note.txt', prefix });
    expect(up.status, JSON.stringify(up.json)).toBe(200);
    expect(up.json.content_uri).toBe(`mxc://test.local/${up.mediaId}`);
    for (const p of LEGACY) {
      const plain = await get(t, `${p}/download/test.local/${up.mediaId}`);
      expect(plain.status, p).toBe(200);
      expect(plain.bytes.toString(), p).toBe(body);
      expect(plain.headers.get('content-disposition'), p).toBe('inline; filename=note.txt');
      const named = await get(t, `${p}/download/test.local/${up.mediaId}/other.txt`);
      expect(named.status, p).toBe(200);
      expect(named.headers.get('content-disposition'), p).toBe('inline; filename=other.txt');
    }
    // The authenticated endpoint serves it too, with a token.
    expect((await get(t, `${AUTHENTICATED}/download/test.local/${up.mediaId}`)).status).toBe(401);
    expect((await get(t, `${AUTHENTICATED}/download/test.local/${up.mediaId}`, alice.accessToken)).bytes.toString()).toBe(body);
  });

  it.each(LEGACY)('makes thumbnails of a PNG on %s/thumbnail without a token', async (prefix) => {
    const up = await upload(t, alice.accessToken, png, { contentType: 'image/png', prefix });
    expect(up.status).toBe(200);
    const crop = await get(t, `${prefix}/thumbnail/test.local/${up.mediaId}?width=32&height=32&method=crop`);
    expect(crop.status, JSON.stringify(crop.json)).toBe(200);
    expect(crop.headers.get('content-type')).toBe('image/png');
    expect(await imageSize(crop.bytes)).toEqual({ format: 'png', width: 32, height: 32 });
    // Never upscaled: a size larger than the image scales to the image itself.
    const scale = await get(t, `${prefix}/thumbnail/test.local/${up.mediaId}?width=320&height=240&method=scale`);
    expect(scale.status).toBe(200);
    expect(await imageSize(scale.bytes)).toEqual({ format: 'png', width: 64, height: 48 });
  });

  it.each(LEGACY)('answers %s/config (with a token, as Synapse)', async (prefix) => {
    const res = await api(t, 'GET', `${prefix}/config`, { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ 'm.upload.size': MAX_UPLOAD });
    expect((await api(t, 'GET', `${prefix}/config`)).status).toBe(401);
  });

  it.each(LEGACY)('previews URLs on %s/preview_url, and the preview image downloads on the legacy path', async (prefix) => {
    const res = await api(t, 'GET', `${prefix}/preview_url?url=${encodeURIComponent(pageUrl)}`, { token: alice.accessToken });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body['og:title']).toBe('Legacy preview');
    expect(res.body['og:image:width']).toBe(64);
    const image = String(res.body['og:image']);
    expect(image).toMatch(/^mxc:\/\/test\.local\/[A-Za-z]{24}$/);
    const got = await get(t, `${prefix}/download/test.local/${image.split('/').pop()}`);
    expect(got.status).toBe(200);
    expect(got.bytes).toEqual(png);
  });
});

describe('with enable_authenticated_media at its default (true)', () => {
  const { t, bob } = useServerWith({ yaml: PREVIEWS }, 'bob');

  it.each(LEGACY)('still takes uploads on %s/upload (as Synapse) and serves them on the authenticated endpoints', async (prefix) => {
    const up = await upload(t, bob.accessToken, png, { contentType: 'image/png', filename: 'pic.png', prefix });
    expect(up.status, JSON.stringify(up.json)).toBe(200);
    const res = await get(t, `${AUTHENTICATED}/download/test.local/${up.mediaId}`, bob.accessToken);
    expect(res.status).toBe(200);
    expect(res.bytes).toEqual(png);
    const thumb = await get(t, `${AUTHENTICATED}/thumbnail/test.local/${up.mediaId}?width=32&height=32&method=crop`, bob.accessToken);
    expect(thumb.status).toBe(200);
    expect(await imageSize(thumb.bytes)).toEqual({ format: 'png', width: 32, height: 32 });
  });

  it('refuses that media on the legacy download and thumbnail endpoints with 404 M_NOT_FOUND, token or not (as Synapse)', async () => {
    const up = await upload(t, bob.accessToken, png, { contentType: 'image/png', prefix: '/_matrix/media/r0' });
    expect(up.status).toBe(200);
    for (const p of [...LEGACY, '/_matrix/media/v1']) {
      for (const token of [undefined, bob.accessToken]) {
        const who = `${p} ${token ? 'with' : 'without'} a token`;
        expectNotFound(await get(t, `${p}/download/test.local/${up.mediaId}`, token), `download ${who}`);
        expectNotFound(await get(t, `${p}/download/test.local/${up.mediaId}/pic.png`, token), `named download ${who}`);
        expectNotFound(await get(t, `${p}/thumbnail/test.local/${up.mediaId}?width=32&height=32`, token), `thumbnail ${who}`);
      }
    }
  });

  it('keeps preview images off the legacy endpoints too', async () => {
    const res = await api(t, 'GET', `/_matrix/media/v3/preview_url?url=${encodeURIComponent(pageUrl)}`, { token: bob.accessToken });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const mediaId = String(res.body['og:image']).split('/').pop();
    expectNotFound(await get(t, `/_matrix/media/v3/download/test.local/${mediaId}`), 'legacy');
    expect((await get(t, `${AUTHENTICATED}/download/test.local/${mediaId}`, bob.accessToken)).status).toBe(200);
  });
});
