/**
 * Shared-secret registration, as Synapse's docs/admin_api/register_api.md:
 * GET /_synapse/admin/v1/register hands out a single-use nonce (60 s);
 * POST with the nonce and an HMAC-SHA1 of the request under
 * `registration_shared_secret` creates the user. No access token is needed,
 * and it works with `enable_registration: false`: it is how the first admin
 * is made (register_new_matrix_user).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';

export const sharedSecretRegisterPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { registration } = ctx.services;
  app.get('/_synapse/admin/v1/register', async () => registration.newNonce());
  app.post('/_synapse/admin/v1/register', async (req) => {
    return registration.sharedSecretRegister(jsonObjectBody(req));
  });
};
