/**
 * URL previews against the real server and a local web server
 * (node:http on 127.0.0.1): OpenGraph from pages (with fallbacks and
 * character sets), images stored as local media, redirects, the IP
 * blacklist and whitelist (IP literals, host names, every redirect hop),
 * url_preview_url_blacklist, the size bound, the cache, and the errors;
 * and a server with previews disabled.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { download, pngImage } from '../helpers/media-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const MAX_SPIDER = 64 * 1024;

let web: Server;
let base: string;
let port: number;
const hits = new Map<string, number>();
let png: Buffer;

type Route = (req: IncomingMessage, res: ServerResponse) => void;
const html =
  (body: string, type = 'text/html; charset=utf-8'): Route =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': type });
    res.end(body);
  };

const routes: Record<string, Route> = {
  '/og': html(`<!doctype html><html><head>
    <meta property="og:title" content="Matrix Blog Post &amp; more">
    <meta property="og:description" content="This is a really cool blog post from matrix.org">
    <meta property="og:image" content="/img.png">
    <meta property="og:image:width" content="9999">
    <meta property="og:type" content="article">
    <title>Ignored title</title></head><body><img src="/other.png"></body></html>`),
  '/fallbacks': html(`<html><head><title>  Plain
      page   title </title>
    <meta name="description" content="A page without OpenGraph tags.">
    <script>var x = "<meta property='og:title' content='not this'>";</script>
    <!-- <meta property="og:description" content="nor this"> -->
    </head><body><p>Text</p><img alt="first" src="img.png"><img src="/other.png"></body></html>`),
  '/no-image': html('<html><head><meta property="og:title" content="No image here"></head></html>'),
  '/broken-image': html('<html><head><meta property="og:title" content="Broken image"><meta property="og:image" content="/missing.png"></head></html>'),
  '/blocked-image': html(`<html><head><meta property="og:title" content="Image on a blocked host"><meta property="og:image" content="http://127.0.0.2:1/x.png"></head></html>`),
  '/latin1': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=ISO-8859-1' });
    res.end(Buffer.from('<html><head><title>Caf\u00e9 cr\u00e8me</title></head></html>', 'latin1'));
  },
  '/meta-charset': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(Buffer.concat([Buffer.from('<html><head><meta charset="windows-1252"><title>'), Buffer.from([0x93, 0x71, 0x94]), Buffer.from('</title></head></html>')]));
  },
  '/img.png': (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
    res.end(png);
  },
  '/other.png': (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end(png);
  },
  '/missing.png': (_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no');
  },
  '/moved': (_req, res) => {
    res.writeHead(301, { location: '/og' });
    res.end();
  },
  '/loop': (_req, res) => {
    res.writeHead(302, { location: '/loop' });
    res.end();
  },
  '/to-other-loopback': (_req, res) => {
    // 127.0.0.2 is in the blacklisted 127.0.0.0/8 but not in the whitelist.
    res.writeHead(302, { location: `http://127.0.0.2:${port}/og` });
    res.end();
  },
  '/to-ftp': (_req, res) => {
    res.writeHead(302, { location: 'ftp://127.0.0.1/file' });
    res.end();
  },
  '/big': (_req, res) => {
    const body = `<html><head><title>big</title></head><body>${'x'.repeat(MAX_SPIDER + 1000)}</body></html>`;
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  },
  '/big-chunked': (_req, res) => {
    // No Content-Length: the bound must hold while reading.
    res.writeHead(200, { 'content-type': 'text/html' });
    const chunk = 'y'.repeat(8192);
    let sent = 0;
    const more = () => {
      while (sent < MAX_SPIDER * 4) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    res.on('error', () => undefined);
    more();
  },
  '/not-found': (_req, res) => {
    res.writeHead(404, { 'content-type': 'text/html' });
    res.end('<title>Not here</title>');
  },
  '/binary': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(Buffer.alloc(100));
  },
  '/private/secret': html('<title>secret</title>'),
  '/counted': html('<html><head><meta property="og:title" content="Counted"></head></html>'),
};

let t: TestServer;
let closedT: TestServer;
let disabledT: TestServer;
let alice: TestUser;
let carol: TestUser;
let dave: TestUser;

const BLACKLIST = ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '::1/128', 'fe80::/10', 'fc00::/7'];

beforeAll(async () => {
  png = await pngImage(40, 30);
  web = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes[path];
    if (route) return route(req, res);
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  port = (web.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;

  // Loopback is blacklisted as in production, and 127.0.0.1 alone whitelisted for the test web server.
  t = await startTestServer({
    yaml: {
      url_preview_enabled: true,
      url_preview_ip_range_blacklist: BLACKLIST,
      url_preview_ip_range_whitelist: ['127.0.0.1'],
      max_spider_size: '64K',
      url_preview_url_blacklist: [{ path: '^/private' }, { netloc: '*.blocked.example' }],
    },
  });
  alice = await createUser(t, 'alice');
});
afterAll(async () => {
  await Promise.all([t?.close(), closedT?.close(), disabledT?.close()]);
  await new Promise<void>((resolve) => (web ? web.close(() => resolve()) : resolve()));
});

const preview = (server: TestServer, user: TestUser | undefined, url: string, extra = '', path = '/_matrix/client/v1/media/preview_url') =>
  api(server, 'GET', `${path}?url=${encodeURIComponent(url)}${extra}`, { token: user?.accessToken });

function expectError(res: { status: number; body: Record<string, unknown> }, status: number, errcode: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.errcode).toBe(errcode);
}

describe('previews of pages', () => {
  it('answers the OpenGraph tags, with og:image stored as local media (spec example shape)', async () => {
    const res = await preview(t, alice, `${base}/og`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      'og:title': 'Matrix Blog Post & more',
      'og:description': 'This is a really cool blog post from matrix.org',
      'og:type': 'article',
      'og:image': expect.stringMatching(/^mxc:\/\/test\.local\/[A-Za-z]{24}$/),
      'og:image:type': 'image/png',
      'og:image:width': 40,
      'og:image:height': 30,
      'matrix:image:size': png.length,
    });
    // The image is real local media of the requester, served like any upload.
    const mediaId = String(res.body['og:image']).split('/').pop()!;
    const got = await download(t, mediaId, { token: alice.accessToken });
    expect(got.status).toBe(200);
    expect(got.bytes).toEqual(png);
    const row = await t.server.ctx.database.db.selectFrom('local_media').selectAll().where('media_id', '=', mediaId).executeTakeFirst();
    expect(row).toMatchObject({ user_id: alice.userId, media_type: 'image/png', upload_name: 'img.png' });
  });

  it('falls back to <title>, the description meta tag and the first <img>, ignoring scripts and comments', async () => {
    const res = await preview(t, alice, `${base}/fallbacks`);
    expect(res.status).toBe(200);
    expect(res.body['og:title']).toBe('Plain page title');
    expect(res.body['og:description']).toBe('A page without OpenGraph tags.');
    expect(res.body['og:image']).toMatch(/^mxc:\/\/test\.local\//);
    expect(res.body['og:image:width']).toBe(40);
  });

  it('a page without an image has no og:image; an image that cannot be fetched is left out', async () => {
    expect((await preview(t, alice, `${base}/no-image`)).body).toEqual({ 'og:title': 'No image here' });
    expect((await preview(t, alice, `${base}/broken-image`)).body).toEqual({ 'og:title': 'Broken image' });
    // The image's host is blacklisted: the page still previews, without it.
    expect((await preview(t, alice, `${base}/blocked-image`)).body).toEqual({ 'og:title': 'Image on a blocked host' });
  });

  it('decodes the character set named by Content-Type or by a <meta charset>', async () => {
    expect((await preview(t, alice, `${base}/latin1`)).body['og:title']).toBe('Café crème');
    expect((await preview(t, alice, `${base}/meta-charset`)).body['og:title']).toBe('\u201cq\u201d');
  });

  it('an image URL previews as the image itself', async () => {
    const res = await preview(t, alice, `${base}/img.png?size=1`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      'og:image': expect.stringMatching(/^mxc:\/\/test\.local\//),
      'og:image:type': 'image/png',
      'og:image:width': 40,
      'og:image:height': 30,
      'matrix:image:size': png.length,
    });
  });

  it('follows redirects', async () => {
    const res = await preview(t, alice, `${base}/moved`);
    expect(res.status).toBe(200);
    expect(res.body['og:title']).toBe('Matrix Blog Post & more');
  });

  it('is served on the legacy /_matrix/media/v3 path too, with ts accepted', async () => {
    const res = await preview(t, alice, `${base}/no-image`, '&ts=1510610716656', '/_matrix/media/v3/preview_url');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ 'og:title': 'No image here' });
  });

  it('answers repeated requests for a URL from its cache', async () => {
    const first = await preview(t, alice, `${base}/counted`);
    const second = await preview(t, alice, `${base}/counted`);
    expect(first.body).toEqual({ 'og:title': 'Counted' });
    expect(second.body).toEqual(first.body);
    expect(hits.get('/counted')).toBe(1);
  });
});

describe('what may be fetched', () => {
  beforeAll(async () => {
    // The same blacklist without the whitelist: nothing on loopback may be fetched.
    closedT = await startTestServer({ yaml: { url_preview_enabled: true, url_preview_ip_range_blacklist: BLACKLIST } });
    carol = await createUser(closedT, 'carol');
  });

  it('a blacklisted IP literal is refused (403), and nothing is requested', async () => {
    const before = hits.get('/og') ?? 0;
    const res = await preview(closedT, carol, `${base}/og`);
    expectError(res, 403, 'M_UNKNOWN');
    expect(hits.get('/og') ?? 0).toBe(before);
  });

  it('a host name resolving to a blacklisted address is refused', async () => {
    expectError(await preview(closedT, carol, `http://localhost:${port}/og`), 403, 'M_UNKNOWN');
  });

  it('IPv6 and IPv4-mapped spellings of loopback are refused too', async () => {
    expectError(await preview(closedT, carol, `http://[::1]:${port}/og`), 403, 'M_UNKNOWN');
    expectError(await preview(closedT, carol, `http://[::ffff:127.0.0.1]:${port}/og`), 403, 'M_UNKNOWN');
    expectError(await preview(t, alice, `http://0.0.0.0:${port}/og`), 403, 'M_UNKNOWN');
  });

  it('each redirect hop is checked again: a redirect into the blacklist is refused', async () => {
    expectError(await preview(t, alice, `${base}/to-other-loopback`), 403, 'M_UNKNOWN');
  });

  it('redirects go on only so far, and only to http(s)', async () => {
    expectError(await preview(t, alice, `${base}/loop`), 502, 'M_UNKNOWN');
    expect(hits.get('/loop')).toBe(6);
    expectError(await preview(t, alice, `${base}/to-ftp`), 502, 'M_UNKNOWN');
  });

  it('url_preview_url_blacklist refuses matching URLs (403 "URL blocked")', async () => {
    const res = await preview(t, alice, `${base}/private/secret`);
    expectError(res, 403, 'M_UNKNOWN');
    expect(res.body.error).toBe('URL blocked');
    expect(hits.get('/private/secret') ?? 0).toBe(0);
    expectError(await preview(t, alice, 'http://www.blocked.example/'), 403, 'M_UNKNOWN');
  });

  it('a body over max_spider_size is refused, with or without Content-Length', async () => {
    expectError(await preview(t, alice, `${base}/big`), 502, 'M_TOO_LARGE');
    expectError(await preview(t, alice, `${base}/big-chunked`), 502, 'M_TOO_LARGE');
  });

  it('an error status or a content type that cannot be previewed is 502', async () => {
    expectError(await preview(t, alice, `${base}/not-found`), 502, 'M_UNKNOWN');
    expectError(await preview(t, alice, `${base}/binary`), 502, 'M_UNKNOWN');
  });
});

describe('requests', () => {
  it('needs an access token', async () => {
    expectError(await preview(t, undefined, `${base}/og`), 401, 'M_MISSING_TOKEN');
    expectError(await preview(t, undefined, `${base}/og`, '', '/_matrix/media/v3/preview_url'), 401, 'M_MISSING_TOKEN');
  });

  it('a missing url is 400 M_MISSING_PARAM', async () => {
    expectError(await api(t, 'GET', '/_matrix/client/v1/media/preview_url', { token: alice.accessToken }), 400, 'M_MISSING_PARAM');
  });

  it.each(['not a url', 'ftp://127.0.0.1/file', 'file:///etc/passwd', 'javascript:alert(1)', '/relative/path'])('url=%s is 400 M_INVALID_PARAM', async (url) => {
    expectError(await preview(t, alice, url), 400, 'M_INVALID_PARAM');
  });

  it('a ts that is not an integer is 400 M_INVALID_PARAM', async () => {
    expectError(await preview(t, alice, `${base}/og`, '&ts=yesterday'), 400, 'M_INVALID_PARAM');
  });

  it('with url_preview_enabled off, the endpoints are unrecognized (404 M_UNRECOGNIZED)', async () => {
    disabledT = await startTestServer();
    dave = await createUser(disabledT, 'dave');
    for (const path of ['/_matrix/client/v1/media/preview_url', '/_matrix/media/v3/preview_url', '/_matrix/media/r0/preview_url']) {
      expectError(await preview(disabledT, dave, `${base}/og`, '', path), 404, 'M_UNRECOGNIZED');
    }
  }, 180_000);
});
