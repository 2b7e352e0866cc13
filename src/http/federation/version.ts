/** GET /_matrix/federation/v1/version: who we are, for other servers and federation testers. */
import type { FastifyPluginAsync } from 'fastify';
import { SERVER_NAME_TAG, SERVER_VERSION } from '../../version.js';
import type { PluginOptions } from '../context.js';

export const federationVersionPlugin: FastifyPluginAsync<PluginOptions> = async (app) => {
  const body = { server: { name: SERVER_NAME_TAG, version: SERVER_VERSION } };
  app.get('/_matrix/federation/v1/version', async () => body);
};
