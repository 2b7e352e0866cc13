/**
 * Pushers, under r0 and v3: GET /pushers lists the caller's pushers; POST
 * /pushers/set creates, replaces or (kind null) deletes one. The rules are
 * in services/push/pushers.ts; sending is the pusher loop's.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';
import { requireUser } from '../auth.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

const NULLABLE_STRING = { type: 'string', nullable: true, errcode: 'M_INVALID_PARAM' };

/**
 * The types of the spec's POST /pushers/set fields (M_INVALID_PARAM, as
 * Synapse). Which are required depends on `kind` (null deletes, and needs
 * only app_id and pushkey) and Synapse names every missing one at once, so
 * presence is checked by the service; null there counts as missing.
 */
const SET_PUSHER_BODY = {
  type: 'object',
  properties: {
    pushkey: NULLABLE_STRING,
    kind: NULLABLE_STRING,
    app_id: NULLABLE_STRING,
    app_display_name: NULLABLE_STRING,
    device_display_name: NULLABLE_STRING,
    profile_tag: NULLABLE_STRING,
    lang: NULLABLE_STRING,
    data: { type: 'object', nullable: true, errcode: 'M_INVALID_PARAM' },
    append: { type: 'boolean', nullable: true, errcode: 'M_INVALID_PARAM' },
  },
};

export const pushersPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { pushers } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.get(`${prefix}/pushers`, async (req) => {
      const requester = await requireUser(ctx, req);
      return { pushers: await pushers.list(requester.userId) };
    });

    app.post(`${prefix}/pushers/set`, { schema: { body: SET_PUSHER_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req);
      await pushers.set(requester.userId, requester.deviceId, body);
      return {};
    });
  }
};
