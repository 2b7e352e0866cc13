/**
 * Media over federation between two Axon servers over HTTPS on the
 * loopback: A's users download and thumbnail B's media through A's client
 * API (A asks B's federation media endpoints, signed, and caches what it
 * gets in remote_content/ and remote_media), the cache answers without B,
 * and B's federation endpoints answer multipart/mixed to signed requests
 * only. A has a smaller max_upload_size, for the too-large case, and
 * refuses media from localhost:2 (prevent_media_downloads_from). A fake
 * server stands for one without the federation endpoint (the fallback to
 * /_matrix/media/v3) and for one answering with a `Location` part.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { type Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xMatrixAuthorization } from '../../src/core/x-matrix.js';
import { multipartBoundary, multipartFraming, parseMultipart } from '../../src/services/media/multipart.js';
import { filesUnder, pngBomb, pngImage } from '../helpers/media-http.js';
import { startFederationServer, type FederationServer } from '../helpers/federation.js';
import { issueLeaf, testCaAgent } from '../helpers/test-ca.js';
import { createUser, type TestUser } from '../helpers/users.js';

let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
let agent: Agent;
let bClosed = false;

const A_MAX_UPLOAD = 100 * 1024;

beforeAll(async () => {
  a = await startFederationServer({ yaml: { max_upload_size: A_MAX_UPLOAD, prevent_media_downloads_from: ['localhost:2'] } });
  b = await startFederationServer();
  agent = testCaAgent();
  alice = await createUser(a.test, 'alice');
  bob = await createUser(b.test, 'bob');
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await Promise.all([a?.close(), bClosed ? undefined : b?.close()]);
});

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: Buffer;
  json: () => Record<string, unknown>;
}

async function raw(to: FederationServer, method: string, path: string, opts: { token?: string; authorization?: string; body?: Buffer; contentType?: string } = {}): Promise<Raw> {
  const headers: Record<string, string> = {};
  if (opts.token) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.authorization) headers['authorization'] = opts.authorization;
  if (opts.contentType) headers['content-type'] = opts.contentType;
  const res = await request(`${to.url}${path}`, { method: method as 'GET', headers, body: opts.body, dispatcher: agent });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, bytes, json: () => JSON.parse(bytes.toString('utf8')) as Record<string, unknown> };
}

/** Uploads on B as bob; answers the media id. */
async function uploadOnB(body: Buffer, contentType: string, filename?: string): Promise<string> {
  const q = filename === undefined ? '' : `?filename=${encodeURIComponent(filename)}`;
  const res = await raw(b, 'POST', `/_matrix/media/v3/upload${q}`, { token: bob.accessToken, body, contentType });
  expect(res.status).toBe(200);
  return String(res.json()['content_uri']).split('/').pop()!;
}

const downloadOnA = (server: string, mediaId: string, suffix = '') =>
  raw(a, 'GET', `/_matrix/client/v1/media/download/${server}/${mediaId}${suffix}`, { token: alice.accessToken });

/** A GET to B's federation API signed as A. */
const signedGetOnB = (uri: string) =>
  raw(b, 'GET', uri, { authorization: xMatrixAuthorization({ method: 'GET', uri, origin: a.serverName, destination: b.serverName }, a.test.server.ctx.keys.current) });

const remoteRow = (mediaId: string) =>
  a.test.server.ctx.database.db.selectFrom('remote_media').selectAll().where('media_origin', '=', b.serverName).where('media_id', '=', mediaId).executeTakeFirst();

const remoteContentDir = () => join(a.test.config.media_store_path, 'remote_content', b.serverName);

function parsed(res: Raw) {
  const ct = res.headers['content-type'];
  const boundary = multipartBoundary(typeof ct === 'string' ? ct : undefined);
  expect(boundary).toBeDefined();
  return parseMultipart(res.bytes, boundary!);
}

describe("downloading another server's media", () => {
  it('serves the bytes, type and file name of media uploaded on B, and caches them on A (file and remote_media row)', async () => {
    const body = Buffer.from('hello from B\n');
    const id = await uploadOnB(body, 'text/plain', 'notes.txt');
    const res = await downloadOnA(b.serverName, id);
    expect(res.status).toBe(200);
    expect(res.bytes).toEqual(body);
    expect(res.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(res.headers['content-disposition']).toBe('inline; filename=notes.txt');
    const row = await remoteRow(id);
    // The type as B served it.
    expect(row).toMatchObject({ media_type: 'text/plain; charset=UTF-8', upload_name: 'notes.txt', authenticated: true, quarantined_by: null });
    expect(Number(row!.media_length)).toBe(body.length);
    const fsId = row!.filesystem_id;
    expect(readFileSync(join(remoteContentDir(), fsId.slice(0, 2), fsId.slice(2, 4), fsId.slice(4)))).toEqual(body);
    // A file name in the path wins, as for local media.
    const named = await downloadOnA(b.serverName, id, '/other.txt');
    expect(named.headers['content-disposition']).toBe('inline; filename=other.txt');
  });

  it('fetches again a cached item whose file has gone, under the same filesystem id', async () => {
    const id = await uploadOnB(Buffer.from('fetched twice'), 'text/plain');
    expect((await downloadOnA(b.serverName, id)).status).toBe(200);
    const fsId = (await remoteRow(id))!.filesystem_id;
    const file = join(remoteContentDir(), fsId.slice(0, 2), fsId.slice(2, 4), fsId.slice(4));
    rmSync(file);
    const again = await downloadOnA(b.serverName, id);
    expect(again.status).toBe(200);
    expect(again.bytes.toString()).toBe('fetched twice');
    expect((await remoteRow(id))!.filesystem_id).toBe(fsId);
    expect(readFileSync(file).toString()).toBe('fetched twice');
  });

  it('fetches once for requests that arrive together', async () => {
    const id = await uploadOnB(Buffer.from('shared fetch'), 'application/octet-stream');
    const before = filesUnder(remoteContentDir()).length;
    const all = await Promise.all([1, 2, 3, 4].map(() => downloadOnA(b.serverName, id)));
    expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    for (const r of all) expect(r.bytes.toString()).toBe('shared fetch');
    expect(filesUnder(remoteContentDir()).length).toBe(before + 1);
  });

  it('thumbnails a PNG from B (from the cached original, kept in remote_thumbnail/ and remote_media_thumbnails)', async () => {
    const png = await pngImage(1000, 500);
    const id = await uploadOnB(png, 'image/png', 'wide.png');
    const res = await raw(a, 'GET', `/_matrix/client/v1/media/thumbnail/${b.serverName}/${id}?width=300&height=300&method=scale`, { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    const m = await sharp(res.bytes).metadata();
    expect([m.format, m.width, m.height]).toEqual(['png', 320, 160]);
    const row = await remoteRow(id);
    const fsId = row!.filesystem_id;
    const thumb = join(a.test.config.media_store_path, 'remote_thumbnail', b.serverName, fsId.slice(0, 2), fsId.slice(2, 4), fsId.slice(4), '320-160-image-png-scale');
    expect(readFileSync(thumb)).toEqual(res.bytes);
    const rows = await a.test.server.ctx.database.db
      .selectFrom('remote_media_thumbnails')
      .select(['width', 'height', 'type', 'method'])
      .where('media_origin', '=', b.serverName)
      .where('media_id', '=', id)
      .execute();
    expect(rows).toEqual([{ width: 320, height: 160, type: 'image/png', method: 'scale' }]);
  });

  it('an image from B over max_image_pixels is not thumbnailed: 502 M_TOO_LARGE (the spec, for remote content)', async () => {
    const id = await uploadOnB(pngBomb(30000, 30000), 'image/png');
    const res = await raw(a, 'GET', `/_matrix/client/v1/media/thumbnail/${b.serverName}/${id}?width=32&height=32`, { token: alice.accessToken });
    expect(res.status).toBe(502);
    expect(res.json()).toEqual({ errcode: 'M_TOO_LARGE', error: 'Content is too large to thumbnail' });
  });

  it('unknown media on B is 404 M_NOT_FOUND; a server that cannot be reached is 502', async () => {
    const missing = await downloadOnA(b.serverName, 'doesNotExistAnywhere');
    expect(missing.status).toBe(404);
    expect(missing.json().errcode).toBe('M_NOT_FOUND');
    expect(await remoteRow('doesNotExistAnywhere')).toBeUndefined();
    const down = await downloadOnA('localhost:1', 'whatever');
    expect(down.status).toBe(502);
    expect(down.json()).toEqual({ errcode: 'M_UNKNOWN', error: 'Failed to fetch remote media' });
    // A server in prevent_media_downloads_from is not even asked (it could not be reached either: that would be 502).
    const prevented = await downloadOnA('localhost:2', 'whatever');
    expect(prevented.status).toBe(404);
    expect(prevented.json().errcode).toBe('M_NOT_FOUND');
  });

  it('media larger than our max_upload_size is 502 M_TOO_LARGE and not cached', async () => {
    const id = await uploadOnB(Buffer.alloc(A_MAX_UPLOAD + 1, 7), 'application/octet-stream');
    const res = await downloadOnA(b.serverName, id);
    expect(res.status).toBe(502);
    expect(res.json().errcode).toBe('M_TOO_LARGE');
    expect(await remoteRow(id)).toBeUndefined();
  });

  it('quarantined remote media is 404', async () => {
    const id = await uploadOnB(Buffer.from('bad'), 'text/plain');
    expect((await downloadOnA(b.serverName, id)).status).toBe(200);
    await a.test.server.ctx.services.mediaAdmin.setQuarantine(b.serverName, id, alice.userId);
    const res = await downloadOnA(b.serverName, id);
    expect(res.status).toBe(404);
    expect(res.json().errcode).toBe('M_NOT_FOUND');
  });

  it('the legacy endpoints: allow_remote=false is 404; with authenticated media on, remote media is not served there', async () => {
    const id = await uploadOnB(Buffer.from('legacy'), 'text/plain');
    const refused = await raw(a, 'GET', `/_matrix/media/v3/download/${b.serverName}/${id}?allow_remote=false`);
    expect(refused.status).toBe(404);
    // Not fetched by the legacy endpoint (as Synapse with enable_authenticated_media)...
    expect((await raw(a, 'GET', `/_matrix/media/v3/download/${b.serverName}/${id}`)).status).toBe(404);
    expect(await remoteRow(id)).toBeUndefined();
    // ...nor served from the cache once fetched through the authenticated one.
    expect((await downloadOnA(b.serverName, id)).status).toBe(200);
    expect((await raw(a, 'GET', `/_matrix/media/v3/download/${b.serverName}/${id}`)).status).toBe(404);
  });
});

describe('servers that are not Axon: a fake one on the loopback (HTTPS, test CA) and a plain-HTTP "CDN"', () => {
  let fake: Server;
  let cdn: Server;
  let fakeName: string;
  let cdnUrl: string;
  const seen: { url: string; signed: boolean }[] = [];

  const listen = async (server: Server): Promise<number> => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };

  function fakeServer(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    seen.push({ url, signed: (req.headers.authorization ?? '').startsWith('X-Matrix ') });
    const json = (status: number, body: unknown) => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url.startsWith('/_matrix/federation/v1/media/download/oldServerMedia')) return json(404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
    if (url.startsWith(`/_matrix/media/v3/download/${fakeName}/oldServerMedia?`)) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-disposition': 'inline; filename="old server.txt"' }).end('from an older server');
      return;
    }
    const redirect = /^\/_matrix\/federation\/v1\/media\/download\/(redirectedMedia|blockedLocation)\?/.exec(url);
    if (redirect) {
      const boundary = 'fakeboundary';
      // 10.0.0.0/8 is in the default ip_range_blacklist (the test servers whitelist only the loopback).
      const location = redirect[1] === 'redirectedMedia' ? `${cdnUrl}/file/redirectedMedia` : 'http://10.11.12.13/file';
      const { head, tail } = multipartFraming(boundary, {}, { Location: location });
      res.writeHead(200, { 'content-type': `multipart/mixed; boundary=${boundary}` }).end(Buffer.concat([head, tail]));
      return;
    }
    json(404, { errcode: 'M_NOT_FOUND', error: 'Not found' });
  }

  beforeAll(async () => {
    const leaf = issueLeaf();
    fake = createHttpsServer({ cert: readFileSync(leaf.chainPath), key: readFileSync(leaf.keyPath) }, fakeServer);
    fakeName = `localhost:${await listen(fake)}`;
    cdn = createHttpServer((req, res) => {
      if (req.url === '/file/redirectedMedia') res.writeHead(200, { 'content-type': 'text/plain', 'content-disposition': 'inline; filename=cdn.txt' }).end('cdn bytes');
      else res.writeHead(404).end();
    });
    cdnUrl = `http://127.0.0.1:${await listen(cdn)}`;
  });

  afterAll(async () => {
    await Promise.all([fake, cdn].map((x) => new Promise((resolve) => (x ? x.close(resolve) : resolve(undefined)))));
  });

  it('falls back to /_matrix/media/v3/download?allow_remote=false for a server without the federation endpoint', async () => {
    const res = await downloadOnA(fakeName, 'oldServerMedia');
    expect(res.status).toBe(200);
    expect(res.bytes.toString()).toBe('from an older server');
    expect(res.headers['content-disposition']).toBe('inline; filename="old server.txt"');
    const asked = seen.filter((r) => r.url.includes('oldServerMedia'));
    expect(asked.map((r) => r.url.split('?')[0])).toEqual(['/_matrix/federation/v1/media/download/oldServerMedia', `/_matrix/media/v3/download/${fakeName}/oldServerMedia`]);
    expect(new URLSearchParams(asked[1]!.url.split('?')[1]).get('allow_remote')).toBe('false');
    expect(asked.every((r) => r.signed)).toBe(true);
    const row = await a.test.server.ctx.database.db
      .selectFrom('remote_media')
      .selectAll()
      .where('media_origin', '=', fakeName)
      .where('media_id', '=', 'oldServerMedia')
      .executeTakeFirst();
    expect(row).toMatchObject({ media_type: 'text/plain', upload_name: 'old server.txt' });
  });

  it('follows a Location part (the fetch goes through the outbound guard) and caches what it names', async () => {
    const res = await downloadOnA(fakeName, 'redirectedMedia');
    expect(res.status).toBe(200);
    expect(res.bytes.toString()).toBe('cdn bytes');
    expect(res.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(res.headers['content-disposition']).toBe('inline; filename=cdn.txt');
    // Cached: the second request asks neither server.
    const before = seen.length;
    expect((await downloadOnA(fakeName, 'redirectedMedia')).bytes.toString()).toBe('cdn bytes');
    expect(seen.length).toBe(before);
  });

  it('a Location in ip_range_blacklist is not fetched: 502', async () => {
    const res = await downloadOnA(fakeName, 'blockedLocation');
    expect(res.status).toBe(502);
    expect(res.json()).toEqual({ errcode: 'M_UNKNOWN', error: 'Failed to fetch remote media' });
  });

  it("the server's own 404 M_NOT_FOUND is 404, without the fallback", async () => {
    const before = seen.length;
    const res = await downloadOnA(fakeName, 'missingThere');
    expect(res.status).toBe(404);
    expect(seen.slice(before).map((r) => r.url.split('?')[0])).toEqual(['/_matrix/federation/v1/media/download/missingThere']);
  });
});

describe('the federation media endpoints', () => {
  it('download: multipart/mixed with {} metadata and the bytes, type and disposition', async () => {
    const body = Buffer.from('over federation');
    const id = await uploadOnB(body, 'text/plain', 'f.txt');
    const res = await signedGetOnB(`/_matrix/federation/v1/media/download/${id}`);
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^multipart\/mixed; boundary=/);
    const parts = parsed(res);
    expect(parts).toHaveLength(2);
    expect(parts[0]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(parts[0]!.body.toString())).toEqual({});
    expect(parts[1]!.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(parts[1]!.headers['content-disposition']).toBe('inline; filename=f.txt');
    expect(parts[1]!.body).toEqual(body);
  });

  it('thumbnail: multipart/mixed with the thumbnail', async () => {
    const id = await uploadOnB(await pngImage(400, 400), 'image/png');
    const res = await signedGetOnB(`/_matrix/federation/v1/media/thumbnail/${id}?width=32&height=32&method=crop`);
    expect(res.status).toBe(200);
    const parts = parsed(res);
    expect(parts[1]!.headers['content-type']).toBe('image/png');
    const m = await sharp(parts[1]!.body).metadata();
    expect([m.format, m.width, m.height]).toEqual(['png', 32, 32]);
  });

  it('unknown and quarantined media are 404 M_NOT_FOUND; a thumbnail without its size is 400', async () => {
    const unknown = await signedGetOnB('/_matrix/federation/v1/media/download/nosuchmedia');
    expect(unknown.status).toBe(404);
    expect(unknown.json().errcode).toBe('M_NOT_FOUND');
    const id = await uploadOnB(Buffer.from('q'), 'text/plain');
    await b.test.server.ctx.services.mediaAdmin.setQuarantine(b.serverName, id, bob.userId);
    const q = await signedGetOnB(`/_matrix/federation/v1/media/download/${id}`);
    expect(q.status).toBe(404);
    const noSize = await signedGetOnB(`/_matrix/federation/v1/media/thumbnail/${id}`);
    expect(noSize.status).toBe(400);
    expect(noSize.json().errcode).toBe('M_MISSING_PARAM');
  });

  it('an unsigned request is 401', async () => {
    const id = await uploadOnB(Buffer.from('x'), 'text/plain');
    for (const path of [`/_matrix/federation/v1/media/download/${id}`, `/_matrix/federation/v1/media/thumbnail/${id}?width=8&height=8`]) {
      const res = await raw(b, 'GET', path);
      expect(res.status, path).toBe(401);
      expect(res.json().errcode).toBe('M_UNAUTHORIZED');
    }
  });
});

describe('the cache without the remote server', () => {
  it('serves cached media and thumbnails with B stopped; uncached media from B is then 502', async () => {
    const body = Buffer.from('kept on A');
    const id = await uploadOnB(body, 'text/plain');
    const png = await uploadOnB(await pngImage(64, 64), 'image/png');
    expect((await downloadOnA(b.serverName, id)).status).toBe(200);
    expect((await downloadOnA(b.serverName, png)).status).toBe(200);
    const uncached = await uploadOnB(Buffer.from('never fetched'), 'text/plain');
    bClosed = true;
    await b.close();
    const again = await downloadOnA(b.serverName, id);
    expect(again.status).toBe(200);
    expect(again.bytes).toEqual(body);
    const thumb = await raw(a, 'GET', `/_matrix/client/v1/media/thumbnail/${b.serverName}/${png}?width=32&height=32&method=crop`, { token: alice.accessToken });
    expect(thumb.status).toBe(200);
    expect(existsSync(remoteContentDir())).toBe(true);
    const gone = await downloadOnA(b.serverName, uncached);
    expect(gone.status).toBe(502);
  });
});
