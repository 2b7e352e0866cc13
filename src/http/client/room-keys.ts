/** Server-side key backup: /room_keys/version and /room_keys/keys. */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

export const roomKeysPlugin: FastifyPluginAsync<PluginOptions> = async () => {
  // Filled in by the work on issue 6.
};
