/**
 * The devices and end-to-end keys of our users for other servers:
 * GET /_matrix/federation/v1/user/devices/{userId}, POST /user/keys/query
 * (device, master and self-signing keys) and /user/keys/claim (one-time
 * keys, else fallback keys). All need a signed request; users of other
 * servers in a body are left out.
 */
import type { FastifyPluginAsync } from 'fastify';
import { parseClaim, parseQuery } from '../../services/e2ee/keys.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { requireOrigin } from './origin.js';

const QUERY_BODY = { type: 'object', required: ['device_keys'], properties: { device_keys: { type: 'object' } } };
const CLAIM_BODY = { type: 'object', required: ['one_time_keys'], properties: { one_time_keys: { type: 'object' } } };

export const federationUserKeysPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const keys = ctx.services.deviceKeys;

  app.get<{ Params: { userId: string } }>('/_matrix/federation/v1/user/devices/:userId', async (req) => {
    await requireOrigin(ctx, req);
    return keys.devicesForServer(req.params.userId);
  });

  app.post('/_matrix/federation/v1/user/keys/query', { schema: { body: QUERY_BODY } }, async (req) => {
    await requireOrigin(ctx, req);
    return keys.queryForServer(parseQuery(jsonObjectBody(req)));
  });

  app.post('/_matrix/federation/v1/user/keys/claim', { schema: { body: CLAIM_BODY } }, async (req) => {
    await requireOrigin(ctx, req);
    return keys.claimForServer(parseClaim(jsonObjectBody(req)));
  });
};
