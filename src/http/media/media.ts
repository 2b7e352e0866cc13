/**
 * Media repository: upload, download, thumbnails, config (authenticated
 * /_matrix/client/v1/media and legacy /_matrix/media/{r0,v1,v3}).
 *
 * - Upload bodies are any type and are never parsed: this plugin replaces
 *   the app's JSON body parser with one that leaves the request stream
 *   alone, and the repository streams it to disk.
 * - The authenticated endpoints need an access token; the legacy download
 *   and thumbnail endpoints do not, and (with enable_authenticated_media)
 *   refuse media uploaded while authenticated media was on, as Synapse.
 * - Other servers' media is fetched over federation and cached by the
 *   repository (the legacy endpoints' `allow_remote=false` refuses it).
 * - Every response carries the sandboxing headers the spec recommends.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { invalidParam, MatrixError } from '../../matrix-error.js';
import { CACHE_CONTROL, contentDisposition, essence, SECURITY_HEADERS, servedContentType } from '../../services/media/headers.js';
import { contradictsClaimedImage, SNIFF_BYTES } from '../../services/media/sniff.js';
import type { LookupOptions, ThumbnailRequest, UploadMeta } from '../../services/media/repository.js';
import { requireUser } from '../auth.js';
import { raiseSchemaError } from '../request-schema.js';
import type { PluginOptions } from '../context.js';

const CLIENT_MEDIA = '/_matrix/client/v1/media';
const LEGACY_PREFIXES = ['/_matrix/media/r0', '/_matrix/media/v1', '/_matrix/media/v3'] as const;

/** The spec's default wait for reserved content, and our ceiling on what a client may ask. */
const DEFAULT_TIMEOUT_MS = 20_000;
const MAX_TIMEOUT_MS = 60_000;
/** Longer file names are refused rather than stored. */
const MAX_FILENAME_BYTES = 1024;

type Query = Record<string, unknown>;
type Download = { Params: { serverName: string; mediaId: string; fileName?: string } };
type Thumb = { Params: { serverName: string; mediaId: string } };

function queryString(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Query | undefined)?.[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidParam(`Query parameter '${name}' must be given once`);
  return v;
}

/** The query parameters of every download and thumbnail (each given once; allow_redirect is accepted and checked only). */
const LOOKUP_PARAMS = {
  timeout_ms: { type: 'string', pattern: '^[0-9]{1,15}$' },
  allow_redirect: { type: 'string', enum: ['true', 'false'] },
  allow_remote: { type: 'string', enum: ['true', 'false'] },
};

/** Download: the lookup parameters. */
const DOWNLOAD_QUERY = { type: 'object', properties: LOOKUP_PARAMS };

/** Thumbnail: the size wanted (required, at least 1), how to fit it, and whether an animated one may be served. */
const THUMBNAIL_QUERY = {
  type: 'object',
  required: ['width', 'height'],
  properties: {
    ...LOOKUP_PARAMS,
    width: { type: 'string', pattern: '^(?=[0-9]*[1-9])[0-9]{1,15}$' },
    height: { type: 'string', pattern: '^(?=[0-9]*[1-9])[0-9]{1,15}$' },
    method: { type: 'string', enum: ['crop', 'scale'] },
    animated: { type: 'string', enum: ['true', 'false'] },
  },
};

/** Query values as the route schemas checked them. */
type LookupQuery = { timeout_ms?: string; allow_remote?: 'true' | 'false' };
type ThumbnailQuery = LookupQuery & { width: string; height: string; method?: 'crop' | 'scale'; animated?: 'true' | 'false' };

function lookupOptions(req: FastifyRequest, legacy: boolean): LookupOptions {
  const q = req.query as LookupQuery;
  const timeout = q.timeout_ms === undefined ? DEFAULT_TIMEOUT_MS : Number(q.timeout_ms);
  // allow_remote is the legacy endpoints' (the authenticated ones do not have it, and Synapse ignores it there).
  return { legacy, timeoutMs: Math.min(timeout, MAX_TIMEOUT_MS), allowRemote: !legacy || q.allow_remote !== 'false' };
}

function uploadMeta(req: FastifyRequest): UploadMeta {
  const ct = req.headers['content-type'];
  const contentType = typeof ct === 'string' && ct.trim() !== '' ? ct.trim() : undefined;
  let fileName = queryString(req, 'filename') ?? null;
  if (fileName === '') fileName = null;
  if (fileName !== null) {
    if (fileName.includes('\u0000')) throw invalidParam('filename may not contain U+0000');
    if (Buffer.byteLength(fileName) > MAX_FILENAME_BYTES) throw invalidParam('filename is too long');
  }
  const cl = req.headers['content-length'];
  const contentLength = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : undefined;
  return { contentType, fileName, contentLength };
}

/** A single `bytes=` range within `size`; undefined for none (or one we do not honour: several ranges); 'unsatisfiable'. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (start >= size || size === 0) return 'unsatisfiable';
  return { start, end };
}

async function openFile(path: string, req: FastifyRequest): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      req.log.warn({ path }, 'media file missing from the media store');
      throw new MatrixError(404, 'M_NOT_FOUND', 'Not found');
    }
    throw err;
  }
}

/** The first bytes of a file (for checking an image's claimed type). */
async function readHead(fh: FileHandle): Promise<Buffer> {
  const head = Buffer.alloc(SNIFF_BYTES);
  const { bytesRead } = await fh.read(head, 0, head.length, 0);
  return head.subarray(0, bytesRead);
}

/**
 * Sends a file (or the requested byte range of it), streamed. `headersFor`
 * gets the open file, so headers can depend on its first bytes.
 */
async function sendFile(
  req: FastifyRequest,
  reply: FastifyReply,
  path: string,
  headersFor: (fh: FileHandle) => Promise<Record<string, string>> | Record<string, string>,
): Promise<FastifyReply> {
  const fh = await openFile(path, req);
  let size: number;
  let headers: Record<string, string>;
  try {
    size = (await fh.stat()).size;
    headers = await headersFor(fh);
  } catch (err) {
    await fh.close();
    throw err;
  }
  void reply.headers(headers).header('cache-control', CACHE_CONTROL).header('accept-ranges', 'bytes');
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    await fh.close();
    return reply.code(416).header('content-range', `bytes */${size}`).send();
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  if (range) void reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  const length = size === 0 ? 0 : end - start + 1;
  void reply.header('content-length', length);
  if (req.method === 'HEAD' || length === 0) {
    await fh.close();
    return reply.send();
  }
  return reply.send(fh.createReadStream({ start, end, autoClose: true }));
}

export const mediaPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const repo = ctx.services.media;

  // Upload bodies stay unread here: the handler streams req.raw to disk after checking the token.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  app.addHook('onRequest', async (_req, reply) => {
    void reply.headers(SECURITY_HEADERS);
  });

  // A declared Content-Length over it is answered 413 before authentication (see body-limit.ts).
  const uploadLimit = repo.settings.maxUploadSize;

  const configBody = () => ({ 'm.upload.size': repo.settings.maxUploadSize });

  async function download(req: FastifyRequest<Download>, reply: FastifyReply, legacy: boolean) {
    // The legacy endpoints take no token: their query failures are raised here.
    raiseSchemaError(req);
    const { serverName, mediaId, fileName } = req.params;
    const opts = lookupOptions(req, legacy);
    const { mediaType, uploadName, path } = await repo.forDownload(serverName, mediaId, opts);
    const type = servedContentType(mediaType);
    const name = fileName !== undefined && fileName !== '' ? fileName : uploadName;
    return sendFile(req, reply, path, async (fh) => {
      // Content claiming an image type it plainly is not (HTML as image/png, say) is not served inline.
      const lying = contradictsClaimedImage(essence(type), await readHead(fh));
      return { 'content-type': type, 'content-disposition': lying ? contentDisposition('application/octet-stream', name) : contentDisposition(type, name) };
    });
  }

  async function thumbnail(req: FastifyRequest<Thumb>, reply: FastifyReply, legacy: boolean) {
    raiseSchemaError(req);
    const { serverName, mediaId } = req.params;
    const q = req.query as ThumbnailQuery;
    const want: ThumbnailRequest = { width: Number(q.width), height: Number(q.height), method: q.method ?? 'scale', animated: q.animated === 'true' };
    const opts = lookupOptions(req, legacy);
    const t = await repo.thumbnail(serverName, mediaId, want, opts);
    const ext = t.type.slice('image/'.length);
    return sendFile(req, reply, t.path, () => ({ 'content-type': t.type, 'content-disposition': `inline; filename=thumbnail.${ext}` }));
  }

  /** GET, and HEAD answered by the same handler (which then sends the headers only, Content-Length included). */
  function getAndHead<T extends { Params: Record<string, string | undefined> }>(
    url: string,
    querystring: Record<string, unknown>,
    handler: (req: FastifyRequest<T>, reply: FastifyReply) => Promise<FastifyReply>,
  ): void {
    app.route({
      method: ['GET', 'HEAD'],
      url,
      exposeHeadRoute: false,
      schema: { querystring },
      handler: (req, reply) => handler(req as unknown as FastifyRequest<T>, reply),
    });
  }

  // Authenticated endpoints (spec 1.11).
  app.get(`${CLIENT_MEDIA}/config`, async (req) => {
    await requireUser(ctx, req, { allowGuest: true });
    return configBody();
  });
  for (const suffix of ['', '/:fileName']) {
    getAndHead<Download>(`${CLIENT_MEDIA}/download/:serverName/:mediaId${suffix}`, DOWNLOAD_QUERY, async (req, reply) => {
      await requireUser(ctx, req, { allowGuest: true });
      return download(req, reply, false);
    });
  }
  getAndHead<Thumb>(`${CLIENT_MEDIA}/thumbnail/:serverName/:mediaId`, THUMBNAIL_QUERY, async (req, reply) => {
    await requireUser(ctx, req, { allowGuest: true });
    return thumbnail(req, reply, false);
  });

  // Upload and create (still under /_matrix/media).
  app.post('/_matrix/media/v1/create', async (req) => {
    const requester = await requireUser(ctx, req);
    return repo.create(requester.userId);
  });

  for (const prefix of LEGACY_PREFIXES) {
    app.post(`${prefix}/upload`, { bodyLimit: uploadLimit }, async (req, reply) => {
      const requester = await requireUser(ctx, req);
      const meta = uploadMeta(req);
      try {
        return { content_uri: await repo.upload(requester.userId, req.raw, meta) };
      } catch (err) {
        // Close the connection rather than keep reading a body refused for its size.
        if (err instanceof MatrixError && err.statusCode === 413) void reply.header('connection', 'close');
        throw err;
      }
    });

    app.put<Thumb>(`${prefix}/upload/:serverName/:mediaId`, { bodyLimit: uploadLimit }, async (req, reply) => {
      const requester = await requireUser(ctx, req);
      const meta = uploadMeta(req);
      try {
        await repo.uploadToReservation(requester.userId, req.params.serverName, req.params.mediaId, req.raw, meta);
        return {};
      } catch (err) {
        // As for POST.
        if (err instanceof MatrixError && err.statusCode === 413) void reply.header('connection', 'close');
        throw err;
      }
    });

    // Legacy (unauthenticated) endpoints, deprecated in spec 1.11.
    app.get(`${prefix}/config`, async (req) => {
      await requireUser(ctx, req, { allowGuest: true });
      return configBody();
    });
    for (const suffix of ['', '/:fileName']) {
      getAndHead<Download>(`${prefix}/download/:serverName/:mediaId${suffix}`, DOWNLOAD_QUERY, (req, reply) => download(req, reply, true));
    }
    getAndHead<Thumb>(`${prefix}/thumbnail/:serverName/:mediaId`, THUMBNAIL_QUERY, (req, reply) => thumbnail(req, reply, true));
  }
};
