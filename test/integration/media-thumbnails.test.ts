/**
 * Thumbnails: Synapse's choice among the configured sizes (or the exact
 * size with dynamic_thumbnails), made once and then served from disk and
 * the local_media_thumbnails table, never upscaled; animated GIFs; and
 * clean refusals for non-images, liars and pixel bombs (the header is
 * checked before anything is decoded).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { useServerWith, useServerWithUsers } from '../helpers/rooms.js';
import { type TestServer } from '../helpers/server.js';
import { type TestUser } from '../helpers/users.js';
import { animatedGif, download, filesUnder, jpegImage, localContentPath, localThumbnailDir, pngBomb, pngImage, rawRequest, thumbnail, upload } from '../helpers/media-http.js';

const { t, alice } = useServerWithUsers('alice');

async function stored(server: TestServer, user: TestUser, body: Buffer | string, contentType: string): Promise<string> {
  const res = await upload(server, user.accessToken, body, { contentType });
  expect(res.status).toBe(200);
  return res.mediaId;
}

const thumbRows = (server: TestServer, mediaId: string) =>
  server.server.ctx.database.db.selectFrom('local_media_thumbnails').select(['width', 'height', 'type', 'method', 'length']).where('media_id', '=', mediaId).execute();

async function meta(bytes: Buffer) {
  const m = await sharp(bytes, { animated: true }).metadata();
  return { format: m.format, width: m.width, height: m.pageHeight ?? m.height, pages: m.pages ?? 1 };
}

describe('thumbnails from the configured sizes (dynamic_thumbnails off)', () => {
  it('scale: the configured size closest to the request that reaches it, kept at Synapse path and in the table', async () => {
    const id = await stored(t, alice, await pngImage(1000, 500), 'image/png');
    const res = await thumbnail(t, id, 'width=300&height=300&method=scale', { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-disposition')).toBe('inline; filename=thumbnail.png');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    // 320x240 scaled to the image's 2:1 aspect ratio.
    expect(await meta(res.bytes)).toEqual({ format: 'png', width: 320, height: 160, pages: 1 });
    const file = join(localThumbnailDir(t, id), '320-160-image-png-scale');
    expect(readFileSync(file)).toEqual(res.bytes);
    expect(await thumbRows(t, id)).toEqual([{ width: 320, height: 160, type: 'image/png', method: 'scale', length: res.bytes.length }]);
  });

  it('serves a made thumbnail from disk the second time', async () => {
    const id = await stored(t, alice, await pngImage(1000, 500), 'image/png');
    const first = await thumbnail(t, id, 'width=640&height=480&method=scale', { token: alice.accessToken });
    expect(first.status).toBe(200);
    const file = join(localThumbnailDir(t, id), '640-320-image-png-scale');
    expect(existsSync(file)).toBe(true);
    // Mark the kept file: the second answer must be it, not a fresh one.
    writeFileSync(file, Buffer.concat([first.bytes, Buffer.from('kept')]));
    const second = await thumbnail(t, id, 'width=640&height=480&method=scale', { token: alice.accessToken });
    expect(second.status).toBe(200);
    expect(second.bytes.subarray(-4).toString()).toBe('kept');
    expect(await thumbRows(t, id)).toHaveLength(1);
  });

  it('crop: JPEG from JPEG, the nearest configured crop at least as large as asked', async () => {
    const id = await stored(t, alice, await jpegImage(1000, 500), 'image/jpeg');
    const small = await thumbnail(t, id, 'width=32&height=32&method=crop', { token: alice.accessToken });
    expect(small.headers.get('content-type')).toBe('image/jpeg');
    expect(await meta(small.bytes)).toEqual({ format: 'jpeg', width: 32, height: 32, pages: 1 });
    // 40x40 is more than 32x32 gives: 96x96.
    const mid = await thumbnail(t, id, 'width=40&height=40&method=crop', { token: alice.accessToken });
    expect(await meta(mid.bytes)).toEqual({ format: 'jpeg', width: 96, height: 96, pages: 1 });
    expect(existsSync(join(localThumbnailDir(t, id), '96-96-image-jpeg-crop'))).toBe(true);
    // Method defaults to scale: 800x600 for a large request.
    const big = await thumbnail(t, id, 'width=2000&height=2000', { token: alice.accessToken });
    expect(await meta(big.bytes)).toEqual({ format: 'jpeg', width: 800, height: 400, pages: 1 });
  });

  it('never upscales a small image', async () => {
    const id = await stored(t, alice, await pngImage(20, 10), 'image/png');
    const scaled = await thumbnail(t, id, 'width=800&height=600&method=scale', { token: alice.accessToken });
    expect(await meta(scaled.bytes)).toEqual({ format: 'png', width: 20, height: 10, pages: 1 });
    const cropped = await thumbnail(t, id, 'width=96&height=96&method=crop', { token: alice.accessToken });
    expect(await meta(cropped.bytes)).toEqual({ format: 'png', width: 10, height: 10, pages: 1 });
  });

  it('animated GIF: an animated WebP with animated=true, a still PNG otherwise', async () => {
    const id = await stored(t, alice, await animatedGif(200, 100), 'image/gif');
    const moving = await thumbnail(t, id, 'width=96&height=96&method=crop&animated=true', { token: alice.accessToken });
    expect(moving.status).toBe(200);
    expect(moving.headers.get('content-type')).toBe('image/webp');
    expect(await meta(moving.bytes)).toEqual({ format: 'webp', width: 96, height: 96, pages: 2 });
    for (const q of ['', '&animated=false']) {
      const still = await thumbnail(t, id, `width=96&height=96&method=crop${q}`, { token: alice.accessToken });
      expect(still.headers.get('content-type')).toBe('image/png');
      expect(await meta(still.bytes)).toEqual({ format: 'png', width: 96, height: 96, pages: 1 });
    }
    // animated=true for a still image is a still thumbnail.
    const png = await stored(t, alice, await pngImage(100, 100), 'image/png');
    const res = await thumbnail(t, png, 'width=32&height=32&method=crop&animated=true', { token: alice.accessToken });
    expect(res.headers.get('content-type')).toBe('image/png');
  });

  it('400 M_UNKNOWN for media that is not an image, or lies about being one; nothing made', async () => {
    const text = await stored(t, alice, 'just text', 'text/plain');
    const html = await stored(t, alice, '<html><body>not a png</body></html>', 'image/png');
    const svg = await stored(t, alice, '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', 'image/png');
    const truncated = await stored(t, alice, (await pngImage(300, 300)).subarray(0, 60), 'image/png');
    for (const id of [text, html, svg, truncated]) {
      const res = await thumbnail(t, id, 'width=32&height=32&method=crop', { token: alice.accessToken });
      expect(res.status).toBe(400);
      expect(res.json.errcode).toBe('M_UNKNOWN');
      expect(filesUnder(localThumbnailDir(t, id))).toEqual([]);
      expect(await thumbRows(t, id)).toEqual([]);
    }
  });

  it('413 M_TOO_LARGE for a pixel bomb, judged from its header without decoding it', async () => {
    // 30000x30000 claimed by a ~100-byte file whose image data could not even be decoded.
    const bomb = pngBomb(30000, 30000);
    expect(bomb.length).toBeLessThan(200);
    const id = await stored(t, alice, bomb, 'image/png');
    const res = await thumbnail(t, id, 'width=32&height=32&method=crop', { token: alice.accessToken });
    expect(res.status).toBe(413);
    expect(res.json.errcode).toBe('M_TOO_LARGE');
    expect(filesUnder(localThumbnailDir(t, id))).toEqual([]);
    expect(await thumbRows(t, id)).toEqual([]);
    // The server is fine afterwards.
    const ok = await stored(t, alice, await pngImage(50, 50), 'image/png');
    expect((await thumbnail(t, ok, 'width=32&height=32&method=crop', { token: alice.accessToken })).status).toBe(200);
  });

  it('checks the parameters: width and height required positive integers, method crop or scale, animated boolean', async () => {
    const id = await stored(t, alice, await pngImage(50, 50), 'image/png');
    const cases: [string, string][] = [
      ['height=32', 'M_MISSING_PARAM'],
      ['width=32', 'M_MISSING_PARAM'],
      ['width=0&height=32', 'M_INVALID_PARAM'],
      ['width=-5&height=32', 'M_INVALID_PARAM'],
      ['width=abc&height=32', 'M_INVALID_PARAM'],
      ['width=32&height=32&method=stretch', 'M_INVALID_PARAM'],
      ['width=32&height=32&animated=yes', 'M_INVALID_PARAM'],
      ['width=32&width=40&height=32', 'M_INVALID_PARAM'],
    ];
    for (const [q, errcode] of cases) {
      const res = await thumbnail(t, id, q, { token: alice.accessToken });
      expect(res.status, q).toBe(400);
      expect(res.json.errcode, q).toBe(errcode);
    }
  });

  it('needs a token on the authenticated endpoint; the legacy one refuses authenticated-only media', async () => {
    const id = await stored(t, alice, await pngImage(50, 50), 'image/png');
    const anon = await thumbnail(t, id, 'width=32&height=32');
    expect(anon.status).toBe(401);
    const legacy = await thumbnail(t, id, 'width=32&height=32', { legacy: true });
    expect(legacy.status).toBe(404);
    expect(legacy.json.errcode).toBe('M_NOT_FOUND');
    await t.server.ctx.database.db.updateTable('local_media').set({ authenticated: false }).where('media_id', '=', id).execute();
    const old = await thumbnail(t, id, 'width=32&height=32', { legacy: true });
    expect(old.status).toBe(200);
    expect(old.headers.get('content-type')).toBe('image/png');
  });

  // (Other servers' media is fetched over federation: federation-media.test.ts.)
  it('404 for unknown and hostile ids', async () => {
    for (const path of [
      '/_matrix/client/v1/media/thumbnail/test.local/abcdefghijklmnopqrstuvwx?width=32&height=32',
      '/_matrix/client/v1/media/thumbnail/test.local/..%2F..%2Fsecret?width=32&height=32',
    ]) {
      const res = await rawRequest(t, 'GET', path, { token: alice.accessToken });
      expect(res.status, path).toBe(404);
      expect(res.json.errcode).toBe('M_NOT_FOUND');
    }
  });

  it('deleteLocal removes the row, the file and the thumbnails', async () => {
    const id = await stored(t, alice, await pngImage(400, 400), 'image/png');
    expect((await thumbnail(t, id, 'width=96&height=96&method=crop', { token: alice.accessToken })).status).toBe(200);
    expect(filesUnder(localThumbnailDir(t, id))).toEqual(['96-96-image-png-crop']);
    const repo = t.server.ctx.services.media;
    expect(await repo.deleteLocal(id)).toBe(true);
    expect(existsSync(localContentPath(t, id))).toBe(false);
    expect(existsSync(localThumbnailDir(t, id))).toBe(false);
    expect(await thumbRows(t, id)).toEqual([]);
    expect((await download(t, id, { token: alice.accessToken })).status).toBe(404);
    expect(await repo.deleteLocal(id)).toBe(false);
  });
});

describe('with a small max_image_pixels', () => {
  const { t: small, bob } = useServerWith({ yaml: { max_image_pixels: 10_000 } }, 'bob');

  it('refuses an ordinary image over the limit (413) and thumbnails one within it', async () => {
    const over = await stored(small, bob, await pngImage(101, 100), 'image/png');
    const res = await thumbnail(small, over, 'width=32&height=32&method=crop', { token: bob.accessToken });
    expect(res.status).toBe(413);
    expect(res.json.errcode).toBe('M_TOO_LARGE');
    const within = await stored(small, bob, await pngImage(100, 100), 'image/png');
    expect((await thumbnail(small, within, 'width=32&height=32&method=crop', { token: bob.accessToken })).status).toBe(200);
  });

  it('makes a still thumbnail of an animation whose frames together exceed the limit', async () => {
    // Two 80x80 frames: each within 10,000 pixels, both together not.
    const id = await stored(small, bob, await animatedGif(80, 80), 'image/gif');
    const res = await thumbnail(small, id, 'width=32&height=32&method=crop&animated=true', { token: bob.accessToken });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
  });
});

describe('with dynamic_thumbnails', () => {
  const { t: dyn, carol } = useServerWith({ yaml: { dynamic_thumbnails: true } }, 'carol');

  it('makes the size asked for (scale keeps the aspect ratio, crop fills the box), once', async () => {
    const id = await stored(dyn, carol, await pngImage(1000, 500), 'image/png');
    const scaled = await thumbnail(dyn, id, 'width=50&height=50&method=scale', { token: carol.accessToken });
    expect(await meta(scaled.bytes)).toEqual({ format: 'png', width: 50, height: 25, pages: 1 });
    const cropped = await thumbnail(dyn, id, 'width=50&height=40&method=crop', { token: carol.accessToken });
    expect(await meta(cropped.bytes)).toEqual({ format: 'png', width: 50, height: 40, pages: 1 });
    await thumbnail(dyn, id, 'width=50&height=40&method=crop', { token: carol.accessToken });
    const rows = await thumbRows(dyn, id);
    expect(rows.map((r) => `${r.width}x${r.height}-${r.method}`).sort()).toEqual(['50x25-scale', '50x40-crop']);
    expect(filesUnder(localThumbnailDir(dyn, id)).sort()).toEqual(['50-25-image-png-scale', '50-40-image-png-crop']);
  });

  it('404 M_NOT_FOUND for media it cannot thumbnail, as Synapse', async () => {
    const id = await stored(dyn, carol, 'not an image', 'text/plain');
    const res = await thumbnail(dyn, id, 'width=50&height=50', { token: carol.accessToken });
    expect(res.status).toBe(404);
    expect(res.json.errcode).toBe('M_NOT_FOUND');
  });
});
