/**
 * /.well-known/matrix/client (from public_baseurl) and, when
 * serve_server_wellknown is set, /.well-known/matrix/server, which makes
 * federation go to port 443 instead of 8448.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from './context.js';
import { unrecognized } from '../matrix-error.js';

export const wellKnownPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { config } = ctx;
  const clientDoc = {
    ...config.extra_well_known_client_content,
    // As Synapse: public_baseurl as configured, which the loader has made end with '/'.
    'm.homeserver': { base_url: config.public_baseurl },
  };
  app.get('/.well-known/matrix/client', async (_req, reply) => {
    // As Synapse: only when public_baseurl was set, since a guessed one would send clients astray.
    if (!config.serve_client_wellknown) throw unrecognized('No .well-known/matrix/client configured');
    void reply.header('cache-control', 'public, max-age=3600');
    return clientDoc;
  });

  const base = new URL(config.public_baseurl);
  const serverDoc = { 'm.server': `${base.hostname}:${base.port || 443}` };
  app.get('/.well-known/matrix/server', async (_req, reply) => {
    if (!config.serve_server_wellknown) throw unrecognized('No .well-known/matrix/server configured');
    void reply.header('cache-control', 'public, max-age=3600');
    return serverDoc;
  });
};
