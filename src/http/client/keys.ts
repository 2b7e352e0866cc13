/** End-to-end keys: /keys/upload, /keys/query, /keys/claim, /keys/changes, cross-signing. */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

export const keysPlugin: FastifyPluginAsync<PluginOptions> = async () => {
  // Filled in by the work on issue 6.
};
