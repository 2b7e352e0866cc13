/**
 * Send-to-device messaging, under r0 and v3: PUT
 * /sendToDevice/{eventType}/{txnId} (guests too, as the spec lists it).
 * The messages reach the devices' /sync (services/e2ee/to-device.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { parseSendToDevice } from '../../services/e2ee/to-device.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** The spec's body: `messages` (required), user id → device id (or `*`) → content. */
const SEND_TO_DEVICE_BODY = {
  type: 'object',
  required: ['messages'],
  properties: { messages: { type: 'object' } },
};

export const toDevicePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { toDevice } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.put<{ Params: { eventType: string; txnId: string } }>(`${prefix}/sendToDevice/:eventType/:txnId`, { schema: { body: SEND_TO_DEVICE_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const { eventType, txnId } = req.params;
      const parsed = parseSendToDevice(eventType, txnId, jsonObjectBody(req));
      await toDevice.send(requester, txnId, parsed);
      return {};
    });
  }
};
