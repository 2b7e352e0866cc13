/** URL previews (/_matrix/client/v1/media/preview_url and /_matrix/media/v3/preview_url). */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

export const previewUrlPlugin: FastifyPluginAsync<PluginOptions> = async () => {
  // Filled in by the work on issue 6.
};
