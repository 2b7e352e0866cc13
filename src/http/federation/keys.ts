/**
 * GET /_matrix/key/v2/server: our published verify keys, signed by every
 * key we hold. The `/{keyId}` form is deprecated but still asked for by old
 * servers; it returns the same document.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

export const keyServerPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  app.get('/_matrix/key/v2/server', async () => ctx.keys.keyDocument());
  app.get('/_matrix/key/v2/server/:keyId', async () => ctx.keys.keyDocument());
};
