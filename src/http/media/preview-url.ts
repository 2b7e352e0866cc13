/**
 * URL previews: GET /_matrix/client/v1/media/preview_url (spec 1.11) and
 * the legacy /_matrix/media/{v3,r0}/preview_url, both for signed-in users.
 * Served only when `url_preview_enabled` is on; otherwise the paths are
 * unknown (404 M_UNRECOGNIZED), as in Synapse.
 *
 * One UrlPreviewService per server (its cache and connection pool are
 * shared by the listeners that serve media); images it fetches are stored
 * through the media repository.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { missingParam } from '../../matrix-error.js';
import { previewConfig } from '../../services/media/preview-config.js';
import { MediaRepository } from '../../services/media/repository.js';
import { parsePreviewUrl, UrlPreviewService } from '../../services/media/url-preview.js';
import { queryInteger, queryString } from '../admin/params.js';
import { requireUser } from '../auth.js';
import type { AppContext, PluginOptions } from '../context.js';

const shared = new WeakMap<AppContext, { service: UrlPreviewService; users: number }>();

function serviceFor(ctx: AppContext): UrlPreviewService {
  let entry = shared.get(ctx);
  if (!entry) {
    const repository = MediaRepository.for(ctx);
    const service = new UrlPreviewService({
      config: previewConfig(ctx.config),
      logger: ctx.logger,
      maxImagePixels: ctx.config.max_image_pixels,
      storeImage: ({ userId, body, contentType, uploadName }) =>
        repository.upload(userId, Readable.from([body]), { contentType, fileName: uploadName, contentLength: body.length }),
    });
    shared.set(ctx, (entry = { service, users: 0 }));
  }
  entry.users++;
  return entry.service;
}

export const previewUrlPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  if (!ctx.config.url_preview_enabled) return;
  const previews = serviceFor(ctx);
  app.addHook('onClose', async () => {
    const entry = shared.get(ctx);
    if (entry && --entry.users === 0) {
      shared.delete(ctx);
      await entry.service.close();
    }
  });

  const handler = async (req: FastifyRequest) => {
    const requester = await requireUser(ctx, req);
    const raw = queryString(req, 'url');
    if (raw === undefined) throw missingParam("Missing string query parameter 'url'");
    // `ts` asks for a preview as of a time; previews are not kept that long, but the value must be a number.
    queryInteger(req, 'ts');
    return previews.preview(parsePreviewUrl(raw), requester.userId);
  };
  app.get('/_matrix/client/v1/media/preview_url', handler);
  for (const v of ['v3', 'r0']) app.get(`/_matrix/media/${v}/preview_url`, handler);
};
