/**
 * GET /_synapse/admin/v1/server_version. Like Synapse, it needs no access
 * token: admin tools read it before signing in to tell which server they face.
 */
import type { FastifyPluginAsync } from 'fastify';
import { SERVER_VERSION } from '../../version.js';
import type { PluginOptions } from '../context.js';

export const adminServerPlugin: FastifyPluginAsync<PluginOptions> = async (app) => {
  const body = { server_version: SERVER_VERSION };
  app.get('/_synapse/admin/v1/server_version', async () => body);
};
