/**
 * POST /rooms/{roomId}/upgrade (r0 and v3): replaces a room with a new one
 * of another room version; see services/rooms/upgrade.ts for what moves.
 */
import type { FastifyPluginAsync } from 'fastify';
import { isValidUserId } from '../../core/auth/ids.js';
import { MatrixError } from '../../matrix-error.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from './session-helpers.js';
import { jsonObjectBody } from '../json-body.js';

export const upgradePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { upgrader } = ctx.services;
  for (const p of CLIENT_PREFIXES) {
    app.post<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/upgrade`, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req);
      const version = body['new_version'];
      if (version === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing params: new_version');
      if (typeof version !== 'string') throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', 'Your homeserver does not support this room version');
      const extra = body['additional_creators'];
      if (extra !== undefined && (!Array.isArray(extra) || !extra.every((u) => typeof u === 'string' && isValidUserId(u) && Buffer.byteLength(u) <= 255))) {
        throw new MatrixError(400, 'M_INVALID_PARAM', 'additional_creators must be a list of user ids');
      }
      const replacement = await upgrader.upgrade(requester, req.params.roomId, version, extra as string[] | undefined);
      req.log.info({ room_id: req.params.roomId, replacement_room: replacement, new_version: version }, 'room upgraded');
      return { replacement_room: replacement };
    });
  }
};
