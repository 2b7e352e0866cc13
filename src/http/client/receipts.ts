/**
 * Receipts and read markers:
 * - POST /rooms/{roomId}/receipt/{receiptType}/{eventId}, for `m.read`,
 *   `m.read.private` and `m.fully_read`, with an optional `thread_id`
 *   (`main` or a thread root; not with `m.fully_read`);
 * - POST /rooms/{roomId}/read_markers with any of `m.fully_read`, `m.read`
 *   and `m.read.private` (other keys are ignored, as in Synapse).
 * The event must be in the room and the user joined to it.
 */
import type { FastifyPluginAsync } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { RECEIPT_TYPES, type ReceiptType } from '../../services/receipts.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from './session-helpers.js';
import { jsonObjectBody } from '../json-body.js';

const invalid = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);

function isReceiptType(t: string): t is ReceiptType {
  return (RECEIPT_TYPES as readonly string[]).includes(t);
}

function checkIds(roomId: string, eventId: string): void {
  if (!roomId.startsWith('!') || !eventId.startsWith('$') || roomId.includes('\u0000') || eventId.includes('\u0000')) {
    throw invalid('A valid room ID and event ID must be specified');
  }
}

export const receiptsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const receipts = ctx.services.receipts;
  for (const prefix of CLIENT_PREFIXES) {
    app.post<{ Params: { roomId: string; receiptType: string; eventId: string } }>(`${prefix}/rooms/:roomId/receipt/:receiptType/:eventId`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const { roomId, receiptType, eventId } = req.params;
      checkIds(roomId, eventId);
      if (!isReceiptType(receiptType)) throw invalid(`Receipt type must be one of ${RECEIPT_TYPES.join(', ')}`);
      const body = jsonObjectBody(req);
      let threadId: string | undefined;
      if (body['thread_id'] !== undefined) {
        const t = body['thread_id'];
        if (typeof t !== 'string' || t === '' || t.includes('\u0000')) throw invalid('thread_id field must be a non-empty string');
        threadId = t;
      }
      await receipts.receipt(requester.userId, roomId, receiptType, eventId, threadId);
      return {};
    });

    app.post<{ Params: { roomId: string } }>(`${prefix}/rooms/:roomId/read_markers`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const body = jsonObjectBody(req);
      const markers: Partial<Record<ReceiptType, string>> = {};
      for (const t of RECEIPT_TYPES) {
        const v = body[t];
        if (v === undefined || v === null) continue;
        if (typeof v !== 'string') throw invalid(`${t} must be an event ID`);
        checkIds(req.params.roomId, v);
        markers[t] = v;
      }
      await receipts.readMarkers(requester.userId, req.params.roomId, markers);
      return {};
    });
  }
};
