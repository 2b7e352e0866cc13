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
import { parsePreviewUrl } from '../../services/media/url-preview.js';
import { QUERY_INTEGER, QUERY_STRING, queryString } from '../query-schema.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';

/** `url` (required) and `ts`, a time in milliseconds that must be a number (previews are not kept that long to honour it). */
const PREVIEW_QUERY = { type: 'object', required: ['url'], properties: { url: QUERY_STRING, ts: QUERY_INTEGER } };

export const previewUrlPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const previews = ctx.services.urlPreviews;
  if (!previews) return;

  const handler = async (req: FastifyRequest) => {
    const requester = await requireUser(ctx, req);
    return previews.preview(parsePreviewUrl(queryString(req, 'url')!), requester.userId);
  };
  app.get('/_matrix/client/v1/media/preview_url', { schema: { querystring: PREVIEW_QUERY } }, handler);
  for (const v of ['v3', 'r0']) app.get(`/_matrix/media/${v}/preview_url`, { schema: { querystring: PREVIEW_QUERY } }, handler);
};
