/**
 * PUT /_matrix/federation/v1/send/{txnId}: a transaction of PDUs and EDUs
 * from another server (services/federation/transactions.ts), answered with
 * a result per PDU.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { requireOrigin } from './origin.js';

const SEND_BODY = { type: 'object', required: ['pdus'], properties: { pdus: { type: 'array' }, edus: { type: 'array' } } };

export const federationSendPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const transactions = ctx.services.federationTransactions;
  app.put<{ Params: { txnId: string } }>('/_matrix/federation/v1/send/:txnId', { schema: { body: SEND_BODY } }, async (req) => {
    const origin = await requireOrigin(ctx, req);
    return transactions.receive(origin, req.params.txnId, jsonObjectBody(req));
  });
};
