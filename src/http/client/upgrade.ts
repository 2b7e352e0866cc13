/**
 * POST /rooms/{roomId}/upgrade (r0 and v3): replaces a room with a new one
 * of another room version; see services/rooms/upgrade.ts for what moves.
 */
import type { FastifyPluginAsync } from 'fastify';
import { isValidUserId } from '../../core/auth/ids.js';
import { MatrixError } from '../../matrix-error.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** The new room version (required; Synapse answers a non-string as an unsupported version) and extra creators. */
const UPGRADE_BODY = {
  type: 'object',
  required: ['new_version'],
  properties: {
    new_version: { type: 'string', errcode: 'M_UNSUPPORTED_ROOM_VERSION' },
    additional_creators: { type: 'array', items: { type: 'string', errcode: 'M_INVALID_PARAM' }, errcode: 'M_INVALID_PARAM' },
  },
};

export const upgradePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { upgrader } = ctx.services;
  for (const p of CLIENT_PREFIXES) {
    app.post<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/upgrade`, { schema: { body: UPGRADE_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req);
      const version = body['new_version'] as string;
      const extra = body['additional_creators'] as string[] | undefined;
      if (extra !== undefined && !extra.every((u) => isValidUserId(u) && Buffer.byteLength(u) <= 255)) {
        throw new MatrixError(400, 'M_INVALID_PARAM', 'additional_creators must be a list of user ids');
      }
      const replacement = await upgrader.upgrade(requester, req.params.roomId, version, extra);
      req.log.info({ room_id: req.params.roomId, replacement_room: replacement, new_version: version }, 'room upgraded');
      return { replacement_room: replacement };
    });
  }
};
