/**
 * PUT /rooms/{roomId}/redact/{eventId}/{txnId} (r0 and v3): sends an
 * `m.room.redaction` through RoomService.send, idempotent per device,
 * endpoint (room and target) and transaction id. Who may redact what is
 * checked as the event is built (services/rooms/redaction-rules.ts); the
 * pipeline then stores the target's redacted form.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { JsonObject } from '../../core/pdu.js';
import { MatrixError } from '../../matrix-error.js';
import { txnScope } from '../../services/rooms/room-service.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

/** The redaction's content: an optional `reason` (null is "not given"); other keys go into the event as sent. */
const REDACT_BODY = { type: 'object', properties: { reason: { type: ['string', 'null'] } } };

export const redactPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const rooms = ctx.services.rooms;

  const redact = async (req: FastifyRequest<{ Params: { roomId: string; eventId: string; txnId?: string } }>) => {
    const requester = await requireUser(ctx, req);
    const content = jsonObjectBody(req) as JsonObject;
    const { roomId, eventId, txnId } = req.params;
    if (!eventId.startsWith('$')) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid event id');
    const txn = txnId === undefined ? undefined : { scope: txnScope.redact(roomId, eventId), id: txnId };
    const sent = await rooms.send(requester, roomId, { type: 'm.room.redaction', content, redacts: eventId }, txn);
    return { event_id: sent.eventId };
  };

  for (const p of CLIENT_PREFIXES) {
    app.put(`${p}/rooms/:roomId/redact/:eventId/:txnId`, { schema: { body: REDACT_BODY } }, redact);
    // Synapse also takes a POST without a transaction id (pre-r0 clients).
    app.post(`${p}/rooms/:roomId/redact/:eventId`, { schema: { body: REDACT_BODY } }, redact);
  }
};
