/** /_synapse/admin media endpoints: list, delete, quarantine, protect, purge. */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

export const adminMediaPlugin: FastifyPluginAsync<PluginOptions> = async () => {
  // Filled in by the work on issue 6.
};
