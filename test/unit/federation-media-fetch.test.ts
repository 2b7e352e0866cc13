/**
 * Fetching remote media, without a network: the multipart/mixed framing
 * (written, then read back; and bodies we must refuse), the file name of a
 * Content-Disposition, and RemoteMediaFetcher's decisions against a fake
 * federation client: when to fall back to the deprecated
 * /_matrix/media/v3/download (and with allow_remote=false), when not to,
 * a Location part, and the errors it answers.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MatrixError } from '../../src/matrix-error.js';
import { FederationRequestError, FederationResponseTooLarge, type FederationRequestOptions, type RawFederationResponse } from '../../src/services/federation/federation-client.js';
import { filenameFromDisposition } from '../../src/services/media/headers.js';
import { MultipartError, multipartBoundary, multipartFraming, parseMultipart } from '../../src/services/media/multipart.js';
import { isUnknownEndpoint, RemoteMediaFetcher } from '../../src/services/media/remote-fetch.js';
import type { Fetched } from '../../src/services/media/safe-fetch.js';

const logger = pino({ level: 'silent' });

function multipartBody(boundary: string, media: Buffer, headers: Record<string, string>): Buffer {
  const { head, tail } = multipartFraming(boundary, {}, headers);
  return Buffer.concat([head, media, tail]);
}

describe('multipart/mixed', () => {
  it('reads back what it writes: the JSON part and the media part with its headers and bytes', () => {
    const media = Buffer.from('\r\n--not-the-boundary\r\nbinary\u0000bytes\r\n');
    const body = multipartBody('b0undary', media, { 'Content-Type': 'image/png', 'Content-Disposition': 'inline; filename=a.png' });
    const parts = parseMultipart(body, 'b0undary');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toEqual({ headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') });
    expect(parts[1]!.headers).toEqual({ 'content-type': 'image/png', 'content-disposition': 'inline; filename=a.png' });
    expect(parts[1]!.body).toEqual(media);
  });

  it('reads a Location part (no body), a preamble, transport padding and a part without headers', () => {
    const body = Buffer.from(
      'preamble\r\n--xx  \r\nContent-Type: application/json\r\n\r\n{}\r\n--xx\r\nLocation: https://cdn.example/a\r\n\r\n\r\n--xx\r\n\r\nraw\r\n--xx--\r\nepilogue',
    );
    const parts = parseMultipart(body, 'xx');
    expect(parts.map((p) => p.headers)).toEqual([{ 'content-type': 'application/json' }, { location: 'https://cdn.example/a' }, {}]);
    expect(parts.map((p) => p.body.toString())).toEqual(['{}', '', 'raw']);
  });

  it('refuses bodies that are not well formed', () => {
    expect(() => parseMultipart(Buffer.from('no boundary here'), 'xx')).toThrow(MultipartError);
    expect(() => parseMultipart(Buffer.from('--xx\r\nContent-Type: a/b\r\n\r\nnever closed'), 'xx')).toThrow(MultipartError);
    expect(() => parseMultipart(Buffer.from('--xxjunk\r\n\r\n\r\n--xx--'), 'xx')).toThrow(MultipartError);
    expect(() => parseMultipart(Buffer.from('--xx\r\nno colon\r\n\r\nbody\r\n--xx--'), 'xx')).toThrow(MultipartError);
  });

  it('takes the boundary of a multipart/mixed Content-Type only', () => {
    expect(multipartBoundary('multipart/mixed; boundary=abc')).toBe('abc');
    expect(multipartBoundary('Multipart/Mixed; charset=x; Boundary="a b:c"')).toBe('a b:c');
    expect(multipartBoundary('multipart/form-data; boundary=abc')).toBeUndefined();
    expect(multipartBoundary('multipart/mixed')).toBeUndefined();
    expect(multipartBoundary(`multipart/mixed; boundary=${'x'.repeat(71)}`)).toBeUndefined();
    expect(multipartBoundary(undefined)).toBeUndefined();
  });
});

describe('filenameFromDisposition', () => {
  it('prefers filename* (UTF-8), then filename (token or quoted); null without one', () => {
    expect(filenameFromDisposition('inline; filename=a.png')).toBe('a.png');
    expect(filenameFromDisposition('attachment; filename="a \\"b\\".txt"')).toBe('a "b".txt');
    expect(filenameFromDisposition(`inline; filename=fallback.txt; filename*=utf-8''%C3%A9t%C3%A9.txt`)).toBe('été.txt');
    expect(filenameFromDisposition(`inline; filename*=UTF-8''bad%ZZ; filename=ok.txt`)).toBe('ok.txt');
    expect(filenameFromDisposition('inline')).toBeNull();
    expect(filenameFromDisposition(undefined)).toBeNull();
  });
});

describe('isUnknownEndpoint (whether to fall back to /_matrix/media/v3)', () => {
  const json = (o: unknown) => Buffer.from(JSON.stringify(o));
  it('404 or 405 with M_UNRECOGNIZED or without a JSON body, and 400 M_UNRECOGNIZED', () => {
    expect(isUnknownEndpoint(404, json({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }))).toBe(true);
    expect(isUnknownEndpoint(405, json({ errcode: 'M_UNRECOGNIZED' }))).toBe(true);
    expect(isUnknownEndpoint(404, Buffer.from('<html>Not Found</html>'))).toBe(true);
    expect(isUnknownEndpoint(404, Buffer.alloc(0))).toBe(true);
    expect(isUnknownEndpoint(400, json({ errcode: 'M_UNRECOGNIZED' }))).toBe(true);
  });
  it('not for media the server does not have, nor for other failures', () => {
    expect(isUnknownEndpoint(404, json({ errcode: 'M_NOT_FOUND', error: 'Not found' }))).toBe(false);
    expect(isUnknownEndpoint(400, json({ errcode: 'M_UNKNOWN' }))).toBe(false);
    expect(isUnknownEndpoint(400, Buffer.from('bad'))).toBe(false);
    expect(isUnknownEndpoint(500, json({ errcode: 'M_UNRECOGNIZED' }))).toBe(false);
    expect(isUnknownEndpoint(200, Buffer.alloc(0))).toBe(false);
  });
});

type Answer = RawFederationResponse | Error;

/** A federation client answering from a list, recording what was asked. */
function fakeClient(answers: Answer[], allowed = true) {
  const asked: FederationRequestOptions[] = [];
  return {
    asked,
    client: {
      allowsDestination: () => allowed,
      requestRaw: async (r: FederationRequestOptions) => {
        asked.push(r);
        const a = answers.shift();
        if (!a) throw new Error('unexpected request');
        if (a instanceof Error) throw a;
        return a;
      },
    },
  };
}

const answer = (status: number, headers: Record<string, string>, body: Buffer | string): RawFederationResponse => ({ status, headers, body: Buffer.from(body) });
const jsonAnswer = (status: number, o: unknown) => answer(status, { 'content-type': 'application/json' }, JSON.stringify(o));

function fetcher(answers: Answer[], o: { fetchLocation?: (url: URL) => Promise<Fetched>; maxBytes?: number; allowed?: boolean } = {}) {
  const fake = fakeClient(answers, o.allowed);
  const f = new RemoteMediaFetcher({
    client: fake.client,
    fetchLocation: o.fetchLocation ?? (() => Promise.reject(new Error('no Location expected'))),
    maxBytes: o.maxBytes ?? 1000,
    logger,
  });
  return { f, asked: fake.asked };
}

async function matrixError(p: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof MatrixError) return { status: err.statusCode, body: err.toJSON() };
    throw err;
  }
  throw new Error('expected a MatrixError');
}

describe('RemoteMediaFetcher', () => {
  it('asks the federation endpoint (timeout_ms passed on) and takes the bytes, type and file name of the multipart answer', async () => {
    const body = multipartBody('bnd', Buffer.from('file bytes'), { 'Content-Type': 'text/plain', 'Content-Disposition': 'attachment; filename="my file.txt"' });
    const { f, asked } = fetcher([answer(200, { 'content-type': 'multipart/mixed; boundary=bnd' }, body)]);
    const got = await f.download('remote.example', 'abc_DEF-1', 5000);
    expect(got).toEqual({ contentType: 'text/plain', uploadName: 'my file.txt', body: Buffer.from('file bytes') });
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({ destination: 'remote.example', method: 'GET', path: '/_matrix/federation/v1/media/download/abc_DEF-1', query: { timeout_ms: 5000 } });
    expect(asked[0]!.signed).not.toBe(false);
  });

  it('falls back to /_matrix/media/v3/download with allow_remote=false when the endpoint is unknown there', async () => {
    for (const refusal of [
      jsonAnswer(404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }),
      answer(404, {}, 'Not Found'),
      jsonAnswer(400, { errcode: 'M_UNRECOGNIZED' }),
    ]) {
      const legacy = answer(200, { 'content-type': 'image/png', 'content-disposition': 'inline; filename=old.png' }, 'png bytes');
      const { f, asked } = fetcher([refusal, legacy]);
      const got = await f.download('old.example', 'media1', 20_000);
      expect(got).toEqual({ contentType: 'image/png', uploadName: 'old.png', body: Buffer.from('png bytes') });
      expect(asked.map((r) => r.path)).toEqual(['/_matrix/federation/v1/media/download/media1', '/_matrix/media/v3/download/old.example/media1']);
      expect(asked[1]!.query).toEqual({ allow_remote: 'false', timeout_ms: 20_000 });
    }
  });

  it("does not fall back for the remote's 404 M_NOT_FOUND (404) or another error (502)", async () => {
    const nf = fetcher([jsonAnswer(404, { errcode: 'M_NOT_FOUND', error: 'Not found' })]);
    expect(await matrixError(nf.f.download('r.example', 'm', 1))).toEqual({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'Not found' } });
    expect(nf.asked).toHaveLength(1);
    const other = fetcher([jsonAnswer(500, { errcode: 'M_UNKNOWN' })]);
    expect(await matrixError(other.f.download('r.example', 'm', 1))).toEqual({ status: 502, body: { errcode: 'M_UNKNOWN', error: 'Failed to fetch remote media' } });
    // The legacy endpoint's own 404 is 404 too.
    const legacy404 = fetcher([jsonAnswer(404, { errcode: 'M_UNRECOGNIZED' }), jsonAnswer(404, { errcode: 'M_NOT_FOUND' })]);
    expect((await matrixError(legacy404.f.download('r.example', 'm', 1))).status).toBe(404);
  });

  it('follows a Location part through fetchLocation', async () => {
    const seen: string[] = [];
    const body = multipartBody('b', Buffer.alloc(0), { Location: 'https://cdn.example/x?sig=1' });
    const { f } = fetcher([answer(200, { 'content-type': 'multipart/mixed; boundary=b' }, body)], {
      fetchLocation: async (url) => {
        seen.push(url.href);
        return { url, status: 200, contentType: 'video/mp4', contentDisposition: 'inline; filename=v.mp4', body: Buffer.from('video') };
      },
    });
    expect(await f.download('r.example', 'm', 1)).toEqual({ contentType: 'video/mp4', uploadName: 'v.mp4', body: Buffer.from('video') });
    expect(seen).toEqual(['https://cdn.example/x?sig=1']);
  });

  it('502 for answers it cannot read: not multipart, not two parts, metadata not JSON', async () => {
    const bad = [
      answer(200, { 'content-type': 'application/octet-stream' }, 'raw bytes'),
      answer(200, { 'content-type': 'multipart/mixed; boundary=b' }, '--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--'),
      answer(
        200,
        { 'content-type': 'multipart/mixed; boundary=b' },
        multipartBody('b', Buffer.from('x'), { 'Content-Type': 'text/plain' }).toString().replace('application/json', 'text/plain'),
      ),
      answer(200, { 'content-type': 'multipart/mixed; boundary=b' }, 'garbage'),
    ];
    for (const a of bad) {
      const { f } = fetcher([a]);
      expect(await matrixError(f.download('r.example', 'm', 1))).toEqual({ status: 502, body: { errcode: 'M_UNKNOWN', error: 'Failed to fetch remote media' } });
    }
  });

  it('too large (the client cap, or a media part over max_upload_size) is 502 M_TOO_LARGE; unreachable is 502 M_UNKNOWN', async () => {
    const capped = fetcher([new FederationResponseTooLarge({ destination: 'r.example', status: 200, reason: 'too big' })], { maxBytes: 10 });
    expect(await matrixError(capped.f.download('r.example', 'm', 1))).toEqual({ status: 502, body: { errcode: 'M_TOO_LARGE', error: 'Requested file is too large > 10 bytes' } });
    const big = multipartBody('b', Buffer.alloc(11), { 'Content-Type': 'application/octet-stream' });
    const part = fetcher([answer(200, { 'content-type': 'multipart/mixed; boundary=b' }, big)], { maxBytes: 10 });
    expect((await matrixError(part.f.download('r.example', 'm', 1))).body).toMatchObject({ errcode: 'M_TOO_LARGE' });
    const down = fetcher([new FederationRequestError({ destination: 'r.example', reason: 'ECONNREFUSED' })]);
    expect(await matrixError(down.f.download('r.example', 'm', 1))).toEqual({ status: 502, body: { errcode: 'M_UNKNOWN', error: 'Failed to fetch remote media' } });
  });

  it('a server outside federation_domain_whitelist is 403, without a request', async () => {
    const { f, asked } = fetcher([], { allowed: false });
    expect(await matrixError(f.download('r.example', 'm', 1))).toEqual({ status: 403, body: { errcode: 'M_FORBIDDEN', error: 'Federation denied with r.example.' } });
    expect(asked).toHaveLength(0);
  });

  it('runs at most 8 fetches at once; the others start as those finish', async () => {
    const asked: string[] = [];
    const release: (() => void)[] = [];
    const ok = answer(200, { 'content-type': 'multipart/mixed; boundary=b' }, multipartBody('b', Buffer.from('x'), { 'Content-Type': 'text/plain' }));
    const f = new RemoteMediaFetcher({
      client: {
        allowsDestination: () => true,
        requestRaw: (r: FederationRequestOptions) => {
          asked.push(r.path);
          return new Promise<RawFederationResponse>((resolve) => release.push(() => resolve(ok)));
        },
      },
      fetchLocation: () => Promise.reject(new Error('no Location expected')),
      maxBytes: 100,
      logger,
    });
    const all = Array.from({ length: 10 }, (_, i) => f.download('r.example', `m${i}`, 1));
    await new Promise((r) => setImmediate(r));
    expect(asked).toHaveLength(8);
    release.shift()!();
    await all[0];
    await new Promise((r) => setImmediate(r));
    expect(asked).toHaveLength(9);
    while (release.length > 0) {
      release.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    expect((await Promise.all(all)).map((x) => x.body.toString())).toEqual(Array(10).fill('x'));
    expect(asked).toHaveLength(10);
  });
});
