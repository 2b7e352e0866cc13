/**
 * Filters: POST /user/{userId}/filter uploads one (validated; the timeline
 * limit capped at `filter_timeline_limit`) and answers its id; GET
 * /user/{userId}/filter/{filterId} gives it back. Only for oneself (403
 * M_FORBIDDEN otherwise, as Synapse); an unknown id is 404 M_NOT_FOUND.
 */
import type { FastifyPluginAsync } from 'fastify';
import { forbidden } from '../../matrix-error.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** The filter is a JSON object; its fields are checked deeply by the filters service. */
const FILTER_BODY = { type: 'object' };

export const filterPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { filters } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.post<{ Params: { userId: string } }>(`${prefix}/user/:userId/filter`, { schema: { body: FILTER_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      if (req.params.userId !== requester.userId) throw forbidden('Cannot create filters for other users');
      const body = jsonObjectBody(req);
      return { filter_id: await filters.upload(requester.userId, body) };
    });

    app.get<{ Params: { userId: string; filterId: string } }>(`${prefix}/user/:userId/filter/:filterId`, async (req) => {
      const requester = await requireUser(ctx, req);
      if (req.params.userId !== requester.userId) throw forbidden('Cannot get filters for other users');
      return filters.download(requester.userId, req.params.filterId);
    });
  }
};
