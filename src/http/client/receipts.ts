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
import { CLIENT_PREFIXES } from '../request-toolkit.js';
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

/** A receipt's body: an optional `thread_id`, `main` or a thread root's event id. */
const RECEIPT_BODY = {
  type: 'object',
  properties: { thread_id: { type: 'string', minLength: 1, errcode: 'M_INVALID_PARAM' } },
};

/** The read markers: each receipt type an optional event id (null is "not given"). */
const READ_MARKERS_BODY = {
  type: 'object',
  properties: Object.fromEntries(RECEIPT_TYPES.map((t) => [t, { type: ['string', 'null'], errcode: 'M_INVALID_PARAM' }])),
};

export const receiptsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const receipts = ctx.services.receipts;
  for (const prefix of CLIENT_PREFIXES) {
    app.post<{ Params: { roomId: string; receiptType: string; eventId: string } }>(
      `${prefix}/rooms/:roomId/receipt/:receiptType/:eventId`,
      { schema: { body: RECEIPT_BODY } },
      async (req) => {
        const requester = await requireUser(ctx, req, { allowGuest: true });
        const { roomId, receiptType, eventId } = req.params;
        checkIds(roomId, eventId);
        if (!isReceiptType(receiptType)) throw invalid(`Receipt type must be one of ${RECEIPT_TYPES.join(', ')}`);
        const threadId = jsonObjectBody(req)['thread_id'] as string | undefined;
        if (threadId?.includes('\u0000')) throw invalid('thread_id field must be a non-empty string');
        await receipts.receipt(requester.userId, roomId, receiptType, eventId, threadId);
        return {};
      },
    );

    app.post<{ Params: { roomId: string } }>(`${prefix}/rooms/:roomId/read_markers`, { schema: { body: READ_MARKERS_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const body = jsonObjectBody(req);
      const markers: Partial<Record<ReceiptType, string>> = {};
      for (const t of RECEIPT_TYPES) {
        const v = body[t] as string | null | undefined;
        if (v === undefined || v === null) continue;
        checkIds(req.params.roomId, v);
        markers[t] = v;
      }
      await receipts.readMarkers(requester.userId, req.params.roomId, markers);
      return {};
    });
  }
};
