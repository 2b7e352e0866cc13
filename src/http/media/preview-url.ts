/**
 * URL previews: GET /_matrix/client/v1/media/preview_url (spec 1.11) and
 * the legacy /_matrix/media/{v3,r0}/preview_url, both for signed-in users.
 * Served only when `url_preview_enabled` is on; otherwise the paths are
 * unknown (404 M_UNRECOGNIZED), as in Synapse.
 *
 * The UrlPreviewService is built once per process (services/index.ts), so
 * its cache and connection pool are shared by the listeners that serve
 * media; images it fetches are stored through the media repository.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { missingParam } from '../../matrix-error.js';
import { parsePreviewUrl } from '../../services/media/url-preview.js';
import { queryInteger, queryString } from '../admin/params.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';

export const previewUrlPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const previews = ctx.services.urlPreviews;
  if (!previews) return;

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
