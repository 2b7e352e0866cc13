/**
 * GET /_matrix/client/{r0,v3}/login: the login flows. The password flow
 * itself arrives with accounts; listing it already lets Element show its
 * username/password form.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

export const loginFlowsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const flows = ctx.config.password_config.enabled ? [{ type: 'm.login.password' }] : [];
  for (const v of ['r0', 'v3']) {
    app.get(`/_matrix/client/${v}/login`, async () => ({ flows }));
  }
};
