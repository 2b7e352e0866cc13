/**
 * Pushers, under r0 and v3: GET /pushers lists the caller's pushers; POST
 * /pushers/set creates, replaces or (kind null) deletes one. The rules are
 * in services/push/pushers.ts; sending is the pusher loop's.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';
import { requireUser } from '../auth.js';
import { CLIENT_PREFIXES } from './session-helpers.js';
import { jsonObjectBody } from '../json-body.js';

export const pushersPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { pushers } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.get(`${prefix}/pushers`, async (req) => {
      const requester = await requireUser(ctx, req);
      return { pushers: await pushers.list(requester.userId) };
    });

    app.post(`${prefix}/pushers/set`, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req);
      await pushers.set(requester.userId, requester.deviceId, body);
      return {};
    });
  }
};
