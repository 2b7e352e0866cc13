/**
 * The federation query API other servers ask us: GET
 * /_matrix/federation/v1/query/profile (a local user's display name and
 * avatar, or the one `field`) and /query/directory (a local alias's room and
 * the servers in it). Both need a signed request.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';
import { QUERY_STRING, queryString } from '../query-schema.js';
import { requireOrigin } from './origin.js';

const PROFILE_QUERY = { type: 'object', required: ['user_id'], properties: { user_id: QUERY_STRING, field: QUERY_STRING } };
const DIRECTORY_QUERY = { type: 'object', required: ['room_alias'], properties: { room_alias: QUERY_STRING } };

export const federationQueriesPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { profiles, aliases } = ctx.services;

  app.get('/_matrix/federation/v1/query/profile', { schema: { querystring: PROFILE_QUERY } }, async (req) => {
    await requireOrigin(ctx, req);
    const profile = await profiles.local(queryString(req, 'user_id') as string);
    // As Synapse: an unknown field answers neither.
    const field = queryString(req, 'field');
    return {
      ...(field === undefined || field === 'displayname' ? { displayname: profile.displayname } : {}),
      ...(field === undefined || field === 'avatar_url' ? { avatar_url: profile.avatar_url } : {}),
    };
  });

  app.get('/_matrix/federation/v1/query/directory', { schema: { querystring: DIRECTORY_QUERY } }, async (req) => {
    await requireOrigin(ctx, req);
    return aliases.resolveLocal(queryString(req, 'room_alias') as string);
  });
};
