/**
 * Test fixtures for the media repository's HTTP API: raw uploads and
 * downloads (bodies of any type, bytes back), images made with sharp, and
 * a PNG whose header claims a huge size (a "pixel bomb") built by hand.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { TestServer } from './server.js';

export interface RawResponse {
  status: number;
  headers: Headers;
  bytes: Buffer;
  /** The body parsed as JSON, when it is JSON. */
  json: Record<string, unknown>;
}

async function toRaw(res: Response): Promise<RawResponse> {
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: Record<string, unknown> = {};
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) {
    try {
      json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      json = {};
    }
  }
  return { status: res.status, headers: res.headers, bytes, json };
}

export async function rawRequest(
  t: TestServer,
  method: string,
  path: string,
  opts: { token?: string; body?: Buffer | string | ReadableStream<Uint8Array>; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const init: RequestInit & { duplex?: 'half' } = { method, headers, body: opts.body as RequestInit['body'] };
  if (opts.body instanceof ReadableStream) init.duplex = 'half';
  return toRaw(await fetch(`${t.url}${path}`, init));
}

/** POST /_matrix/media/v3/upload; answers the response and, on success, the media id. */
export async function upload(
  t: TestServer,
  token: string | undefined,
  body: Buffer | string | ReadableStream<Uint8Array>,
  opts: { contentType?: string; filename?: string; prefix?: string } = {},
): Promise<RawResponse & { mediaId: string }> {
  const q = opts.filename === undefined ? '' : `?filename=${encodeURIComponent(opts.filename)}`;
  const headers: Record<string, string> = {};
  if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
  const res = await rawRequest(t, 'POST', `${opts.prefix ?? '/_matrix/media/v3'}/upload${q}`, { token, body, headers });
  const uri = typeof res.json.content_uri === 'string' ? res.json.content_uri : '';
  return { ...res, mediaId: uri.split('/').pop() ?? '' };
}

export function download(
  t: TestServer,
  mediaId: string,
  opts: { token?: string; legacy?: boolean; fileName?: string; query?: string; headers?: Record<string, string>; server?: string; method?: string } = {},
) {
  const base = opts.legacy ? '/_matrix/media/v3/download' : '/_matrix/client/v1/media/download';
  const name = opts.fileName === undefined ? '' : `/${encodeURIComponent(opts.fileName)}`;
  const path = `${base}/${opts.server ?? t.config.server_name}/${mediaId}${name}${opts.query ?? ''}`;
  return rawRequest(t, opts.method ?? 'GET', path, { token: opts.token, headers: opts.headers });
}

export function thumbnail(t: TestServer, mediaId: string, query: string, opts: { token?: string; legacy?: boolean } = {}) {
  const base = opts.legacy ? '/_matrix/media/v3/thumbnail' : '/_matrix/client/v1/media/thumbnail';
  return rawRequest(t, 'GET', `${base}/${t.config.server_name}/${mediaId}?${query}`, { token: opts.token });
}

/** Where Synapse keeps a local file: local_content/ab/cd/efgh… */
export function localContentPath(t: TestServer, mediaId: string): string {
  return join(t.config.media_store_path, 'local_content', mediaId.slice(0, 2), mediaId.slice(2, 4), mediaId.slice(4));
}

export function localThumbnailDir(t: TestServer, mediaId: string): string {
  return join(t.config.media_store_path, 'local_thumbnails', mediaId.slice(0, 2), mediaId.slice(2, 4), mediaId.slice(4));
}

/** Every file under a directory (recursively), relative names; [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1));
}

export async function pngImage(width: number, height: number, color = '#3366cc'): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: color } })
    .png()
    .toBuffer();
}

export async function jpegImage(width: number, height: number, color = '#cc6633'): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: color } })
    .jpeg()
    .toBuffer();
}

/** A two-frame animated GIF. */
export async function animatedGif(width: number, height: number): Promise<Buffer> {
  const a = await pngImage(width, height, '#ff0000');
  const b = await pngImage(width, height, '#0000ff');
  return sharp([a, b], { join: { animated: true } })
    .gif()
    .toBuffer();
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed) >>> 0);
  return Buffer.concat([len, typed, crc]);
}

/** A small file whose PNG header claims width×height pixels (its image data is a few zero bytes). */
export function pngBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
