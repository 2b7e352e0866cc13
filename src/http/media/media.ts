/** Media repository: upload, download, thumbnails, config (authenticated /_matrix/client/v1/media and legacy /_matrix/media/v3). */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

export const mediaPlugin: FastifyPluginAsync<PluginOptions> = async () => {
  // Filled in by the work on issue 6.
};
