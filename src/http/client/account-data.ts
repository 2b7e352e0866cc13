/**
 * Account data, under r0 and v3: GET/PUT /user/{userId}/account_data/{type}
 * and /user/{userId}/rooms/{roomId}/account_data/{type}. Only for oneself;
 * `m.fully_read` and `m.push_rules` are the server's to write (405
 * M_BAD_JSON, as the spec says). Each write takes a new position on the
 * account-data stream, which /sync reads (AccountDataService).
 */
import type { FastifyPluginAsync } from 'fastify';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { containsNul } from '../../core/json-values.js';
import { CLIENT_PREFIXES, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** Account data content: any JSON object. */
const CONTENT_BODY = { type: 'object' };

const SERVER_MANAGED: Record<string, string> = {
  'm.fully_read': 'Cannot set m.fully_read through this API. Use /rooms/!roomId:server.name/read_markers',
  'm.push_rules': 'Cannot set m.push_rules through this API. Use /pushrules',
};

/** Server names: a DNS name, IPv4 address or bracketed IPv6 literal, with an optional port. */
const SERVER_NAME_RE = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::\d{1,5})?$/;

/** Room ids as Synapse accepts them: `!opaque:server`, or (room version 12) `!` + a hash with no server part. */
export function isValidRoomId(roomId: string): boolean {
  if (roomId.length < 2 || roomId[0] !== '!' || Buffer.byteLength(roomId) > 255) return false;
  const colon = roomId.indexOf(':');
  if (colon < 0) return !roomId.includes('\u0000');
  return colon > 1 && SERVER_NAME_RE.test(roomId.slice(colon + 1));
}

function contentOf(req: Parameters<typeof jsonObjectBody>[0]): Record<string, unknown> {
  const content = jsonObjectBody(req);
  if (containsNul(content)) throw new MatrixError(400, 'M_BAD_JSON', 'Account data may not contain U+0000');
  return content;
}

function checkType(type: string): void {
  rejectNul(type, 'Account data type');
  if (type === '') throw new MatrixError(400, 'M_INVALID_PARAM', 'Account data type may not be empty');
}

export const accountDataPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { accountData } = ctx.services;

  async function owner(req: Parameters<typeof requireUser>[1], userId: string, verb: 'add' | 'get'): Promise<void> {
    const requester = await requireUser(ctx, req);
    if (requester.userId !== userId) throw forbidden(`Cannot ${verb} account data for other users.`);
  }

  function checkRoom(roomId: string): void {
    if (!isValidRoomId(roomId)) throw new MatrixError(400, 'M_INVALID_PARAM', `${roomId} is not a valid room ID`);
  }

  function checkWritable(type: string): void {
    const why = SERVER_MANAGED[type];
    if (why) throw new MatrixError(405, 'M_BAD_JSON', why);
  }

  for (const prefix of CLIENT_PREFIXES) {
    type Global = { Params: { userId: string; type: string } };
    type Room = { Params: { userId: string; roomId: string; type: string } };

    app.put<Global>(`${prefix}/user/:userId/account_data/:type`, { schema: { body: CONTENT_BODY } }, async (req) => {
      const { userId, type } = req.params;
      await owner(req, userId, 'add');
      checkType(type);
      checkWritable(type);
      const content = contentOf(req);
      await accountData.put(userId, undefined, type, content);
      return {};
    });

    app.get<Global>(`${prefix}/user/:userId/account_data/:type`, async (req) => {
      const { userId, type } = req.params;
      await owner(req, userId, 'get');
      checkType(type);
      const content = await accountData.get(userId, undefined, type);
      if (content === undefined) throw new MatrixError(404, 'M_NOT_FOUND', 'Account data not found');
      return content;
    });

    app.put<Room>(`${prefix}/user/:userId/rooms/:roomId/account_data/:type`, { schema: { body: CONTENT_BODY } }, async (req) => {
      const { userId, roomId, type } = req.params;
      await owner(req, userId, 'add');
      checkRoom(roomId);
      checkType(type);
      checkWritable(type);
      const content = contentOf(req);
      await accountData.put(userId, roomId, type, content);
      return {};
    });

    app.get<Room>(`${prefix}/user/:userId/rooms/:roomId/account_data/:type`, async (req) => {
      const { userId, roomId, type } = req.params;
      await owner(req, userId, 'get');
      checkRoom(roomId);
      checkType(type);
      const content = await accountData.get(userId, roomId, type);
      if (content === undefined) throw new MatrixError(404, 'M_NOT_FOUND', 'Room account data not found');
      return content;
    });
  }
};
