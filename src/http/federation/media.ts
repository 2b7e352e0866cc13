/**
 * The federation content repository (spec 1.11): GET
 * /_matrix/federation/v1/media/download/{mediaId} and
 * /media/thumbnail/{mediaId} serve this server's media to other servers.
 * Signed requests only. The answer is `multipart/mixed`: `{}` as JSON
 * metadata, then the bytes with the Content-Type and Content-Disposition a
 * client download would carry (we never answer with a `Location`). Media is
 * looked up as by the authenticated client endpoints: unknown and
 * quarantined media are 404 M_NOT_FOUND, reserved content is waited for
 * (`timeout_ms`), thumbnails are made and kept by the same thumbnailer.
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { contentDisposition, essence, servedContentType } from '../../services/media/headers.js';
import { multipartFraming, newBoundary } from '../../services/media/multipart.js';
import type { LookupOptions, ThumbnailRequest } from '../../services/media/repository.js';
import { contradictsClaimedImage, SNIFF_BYTES } from '../../services/media/sniff.js';
import type { PluginOptions } from '../context.js';
import { requireOrigin } from './origin.js';

const DEFAULT_TIMEOUT_MS = 20_000;
const MAX_TIMEOUT_MS = 60_000;

const TIMEOUT = { type: 'string', pattern: '^[0-9]{1,15}$' };
const DOWNLOAD_QUERY = { type: 'object', properties: { timeout_ms: TIMEOUT } };
const THUMBNAIL_QUERY = {
  type: 'object',
  required: ['width', 'height'],
  properties: {
    timeout_ms: TIMEOUT,
    width: { type: 'string', pattern: '^(?=[0-9]*[1-9])[0-9]{1,15}$' },
    height: { type: 'string', pattern: '^(?=[0-9]*[1-9])[0-9]{1,15}$' },
    method: { type: 'string', enum: ['crop', 'scale'] },
    animated: { type: 'string', enum: ['true', 'false'] },
  },
};

type Params = { Params: { mediaId: string } };
type ThumbnailQuery = { timeout_ms?: string; width: string; height: string; method?: 'crop' | 'scale'; animated?: 'true' | 'false' };

function lookupOptions(req: FastifyRequest): LookupOptions {
  const raw = (req.query as { timeout_ms?: string }).timeout_ms;
  return { legacy: false, timeoutMs: Math.min(raw === undefined ? DEFAULT_TIMEOUT_MS : Number(raw), MAX_TIMEOUT_MS) };
}

/**
 * Sends `path` as the media part of a multipart/mixed answer, streamed;
 * `partHeaders` gets the file's first bytes (to check an image's claimed type).
 */
async function sendMultipart(reply: FastifyReply, path: string, partHeaders: (head: Buffer) => Record<string, string>): Promise<FastifyReply> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      reply.log.warn({ path }, 'media file missing from the media store');
      throw new MatrixError(404, 'M_NOT_FOUND', 'Not found');
    }
    throw err;
  }
  let size: number;
  let framing: { head: Buffer; tail: Buffer };
  const boundary = newBoundary();
  try {
    size = (await fh.stat()).size;
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    framing = multipartFraming(boundary, {}, partHeaders(head.subarray(0, bytesRead)));
  } catch (err) {
    await fh.close();
    throw err;
  }
  const file = size === 0 ? undefined : fh.createReadStream({ autoClose: true });
  if (!file) await fh.close();
  async function* body() {
    yield framing.head;
    if (file) yield* file;
    yield framing.tail;
  }
  const stream = Readable.from(body());
  // A request gone before the file was read whole: its handle closes with it.
  stream.on('close', () => file?.destroy());
  return reply
    .header('content-type', `multipart/mixed; boundary=${boundary}`)
    .header('content-length', framing.head.length + size + framing.tail.length)
    .send(stream);
}

export const federationMediaPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const repo = ctx.services.media;
  const ours = ctx.config.server_name;

  app.get<Params>('/_matrix/federation/v1/media/download/:mediaId', { schema: { querystring: DOWNLOAD_QUERY } }, async (req, reply) => {
    await requireOrigin(ctx, req);
    const { media, path } = await repo.localForDownload(ours, req.params.mediaId, lookupOptions(req));
    const type = servedContentType(media.media_type);
    return sendMultipart(reply, path, (head) => {
      // As the client download: content claiming an image type it plainly is not is an attachment.
      const lying = contradictsClaimedImage(essence(type), head);
      return { 'Content-Type': type, 'Content-Disposition': contentDisposition(lying ? 'application/octet-stream' : type, media.upload_name) };
    });
  });

  app.get<Params>('/_matrix/federation/v1/media/thumbnail/:mediaId', { schema: { querystring: THUMBNAIL_QUERY } }, async (req, reply) => {
    await requireOrigin(ctx, req);
    const q = req.query as ThumbnailQuery;
    const want: ThumbnailRequest = { width: Number(q.width), height: Number(q.height), method: q.method ?? 'scale', animated: q.animated === 'true' };
    const t = await repo.thumbnail(ours, req.params.mediaId, want, lookupOptions(req));
    return sendMultipart(reply, t.path, () => ({ 'Content-Type': t.type, 'Content-Disposition': `inline; filename=thumbnail.${t.type.slice('image/'.length)}` }));
  });
};
