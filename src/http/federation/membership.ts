/**
 * Joining, leaving and knocking on our rooms from other servers:
 * GET /_matrix/federation/v1/make_join|make_leave|make_knock/{roomId}/{userId}
 * answer a template event; PUT /v1 and /v2 send_join and send_leave, and
 * /v1/send_knock, take the signed event back; PUT /v1 and /v2 invite are
 * invites of our users (services/federation/invites.ts). v1 answers are
 * wrapped as `[200, body]`, as the spec's deprecated forms are.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { RemoteMembership } from '../../services/federation/resident-membership.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { QUERY_STRING, queryStrings } from '../query-schema.js';
import { requireOrigin } from './origin.js';

type MakeParams = { Params: { roomId: string; userId: string } };
type SendParams = { Params: { roomId: string; eventId: string } };

const MAKE_QUERY = { type: 'object', properties: { ver: QUERY_STRING } };

export const federationMembershipPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const resident = ctx.services.residentMembership;

  const make = (membership: RemoteMembership, versionsRequired: boolean) =>
    app.get<MakeParams>(`/_matrix/federation/v1/make_${membership}/:roomId/:userId`, { schema: { querystring: MAKE_QUERY } }, async (req) => {
      const origin = await requireOrigin(ctx, req);
      const ver = queryStrings(req, 'ver');
      // make_join without `ver` is a server that speaks room version 1 only; make_knock must name its versions.
      const versions = ver.length > 0 ? ver : versionsRequired ? [] : membership === 'join' ? ['1'] : undefined;
      return resident.make(origin, req.params.roomId, req.params.userId, membership, versions);
    });
  make('join', false);
  make('leave', false);
  make('knock', true);

  for (const v of ['v1', 'v2'] as const) {
    const wrap = <T>(body: T) => (v === 'v1' ? [200, body] : body);
    app.put<SendParams>(`/_matrix/federation/${v}/send_join/:roomId/:eventId`, async (req) => {
      const origin = await requireOrigin(ctx, req);
      return wrap(await resident.sendJoin(origin, req.params.roomId, req.params.eventId, jsonObjectBody(req)));
    });
    app.put<SendParams>(`/_matrix/federation/${v}/send_leave/:roomId/:eventId`, async (req) => {
      const origin = await requireOrigin(ctx, req);
      await resident.sendLeave(origin, req.params.roomId, req.params.eventId, jsonObjectBody(req));
      return wrap({});
    });
  }
  // Invites of our users: v2 takes {event, room_version, invite_room_state}; v1 (room versions 1 and 2) the event itself.
  app.put<SendParams>('/_matrix/federation/v2/invite/:roomId/:eventId', async (req) => {
    const origin = await requireOrigin(ctx, req);
    return ctx.services.invites.receive(origin, req.params.roomId, req.params.eventId, jsonObjectBody(req), 'v2');
  });
  app.put<SendParams>('/_matrix/federation/v1/invite/:roomId/:eventId', async (req) => {
    const origin = await requireOrigin(ctx, req);
    return [200, await ctx.services.invites.receive(origin, req.params.roomId, req.params.eventId, jsonObjectBody(req), 'v1')];
  });

  app.put<SendParams>('/_matrix/federation/v1/send_knock/:roomId/:eventId', async (req) => {
    const origin = await requireOrigin(ctx, req);
    return resident.sendKnock(origin, req.params.roomId, req.params.eventId, jsonObjectBody(req));
  });
};
