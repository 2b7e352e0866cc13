/**
 * Rooms, the core of it: /createRoom, sending messages and state, reading
 * state, and the membership endpoints (join, invite, leave, kick, ban,
 * unban, forget is with the reading endpoints).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { JsonObject } from '../../core/pdu.js';
import { MatrixError } from '../../matrix-error.js';
import { txnScope, type CreateRoomRequest } from '../../services/rooms/room-service.js';
import { toClientEvent } from '../../services/rooms/client-event.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { type EmptyBody, jsonObjectBody } from '../json-body.js';
import { isJsonObject } from '../../core/json-values.js';
import { CLIENT_PREFIXES, reasonOf } from './session-helpers.js';


/** The body as a JSON object; the membership routes take no body (or `null`) as `{}`, as Synapse. */
function bodyObject(req: FastifyRequest, empty: EmptyBody = 'required'): JsonObject {
  return jsonObjectBody(req, empty) as JsonObject;
}

const USER_ID = /^@[^:]+:.+$/;

function validateCreateRoom(b: JsonObject): CreateRoomRequest {
  const bad = (msg: string) => new MatrixError(400, 'M_BAD_JSON', msg);
  const str = (k: string) => {
    if (b[k] !== undefined && typeof b[k] !== 'string') throw bad(`${k} must be a string`);
  };
  ['name', 'topic', 'room_alias_name', 'room_version'].forEach(str);
  if (b.visibility !== undefined && b.visibility !== 'public' && b.visibility !== 'private') throw bad('visibility must be "public" or "private"');
  if (b.preset !== undefined && !['private_chat', 'trusted_private_chat', 'public_chat'].includes(b.preset as string)) {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'Unknown preset');
  }
  if (b.invite !== undefined && (!Array.isArray(b.invite) || !b.invite.every((u) => typeof u === 'string' && USER_ID.test(u)))) {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'invite must be a list of user ids');
  }
  for (const k of ['creation_content', 'power_level_content_override']) if (b[k] !== undefined && !isJsonObject<JsonObject>(b[k])) throw bad(`${k} must be an object`);
  if (b.initial_state !== undefined) {
    if (!Array.isArray(b.initial_state) || !b.initial_state.every((s) => isJsonObject<JsonObject>(s) && typeof s['type'] === 'string' && isJsonObject(s['content']) && (s['state_key'] === undefined || typeof s['state_key'] === 'string'))) {
      throw bad('initial_state must be a list of {type, state_key, content}');
    }
  }
  if (b.is_direct !== undefined && typeof b.is_direct !== 'boolean') throw bad('is_direct must be a boolean');
  return b as unknown as CreateRoomRequest;
}

export const roomsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const rooms = ctx.services.rooms;

  const requireJoined = async (roomId: string, userId: string) => {
    const m = await rooms.membership(roomId, userId);
    if (m !== 'join') throw new MatrixError(403, 'M_FORBIDDEN', `User ${userId} not in room ${roomId}`);
  };

  for (const p of CLIENT_PREFIXES) {
    app.post(`${p}/createRoom`, async (req) => {
      const requester = await requireUser(ctx, req);
      const { roomId } = await rooms.createRoom(requester, validateCreateRoom(bodyObject(req)));
      return { room_id: roomId };
    });

    app.put<{ Params: { roomId: string; eventType: string; txnId: string } }>(`${p}/rooms/:roomId/send/:eventType/:txnId`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const content = bodyObject(req);
      const { roomId, eventType, txnId } = req.params;
      const { eventId } = await rooms.send(requester, roomId, { type: eventType, content }, { scope: txnScope.send(roomId, eventType), id: txnId });
      return { event_id: eventId };
    });

    const putState = async (req: FastifyRequest<{ Params: { roomId: string; eventType: string; stateKey?: string } }>) => {
      const requester = await requireUser(ctx, req);
      const content = bodyObject(req);
      const { eventId } = await rooms.send(requester, req.params.roomId, { type: req.params.eventType, state_key: req.params.stateKey ?? '', content });
      return { event_id: eventId };
    };
    app.put(`${p}/rooms/:roomId/state/:eventType`, putState);
    app.put(`${p}/rooms/:roomId/state/:eventType/:stateKey`, putState);

    app.get<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/state`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      await requireJoined(req.params.roomId, requester.userId);
      const now = Date.now();
      return (await rooms.currentStateEvents(req.params.roomId)).map((e) => toClientEvent(e, now));
    });

    const getStateEvent = async (req: FastifyRequest<{ Params: { roomId: string; eventType: string; stateKey?: string } }>) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      await requireJoined(req.params.roomId, requester.userId);
      const key = req.params.stateKey ?? '';
      const e = await rooms.currentStateEvent(req.params.roomId, req.params.eventType, key);
      if (!e) throw new MatrixError(404, 'M_NOT_FOUND', 'Event not found');
      return e.json['content'] ?? {};
    };
    app.get(`${p}/rooms/:roomId/state/:eventType`, getStateEvent);
    app.get(`${p}/rooms/:roomId/state/:eventType/:stateKey`, getStateEvent);

    app.get(`${p}/joined_rooms`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      return { joined_rooms: await rooms.joinedRooms(requester.userId) };
    });

    app.post<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/join`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      await rooms.updateMembership(requester, req.params.roomId, requester.userId, 'join', reasonOf(bodyObject(req, 'allowEmpty')));
      return { room_id: req.params.roomId };
    });

    app.post<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/leave`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const b = bodyObject(req, 'allowEmpty');
      await rooms.updateMembership(requester, req.params.roomId, requester.userId, 'leave', reasonOf(b));
      return {};
    });

    for (const action of ['invite', 'kick', 'ban', 'unban'] as const) {
      app.post<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/${action}`, async (req) => {
        const requester = await requireUser(ctx, req);
        const b = bodyObject(req, 'allowEmpty');
        if (!('user_id' in b)) throw new MatrixError(400, 'M_MISSING_PARAM', "Missing params: ['user_id']");
        if (typeof b.user_id !== 'string' || !USER_ID.test(b.user_id)) throw new MatrixError(400, 'M_INVALID_PARAM', 'user_id must be a user id');
        // Synapse's checks (unban only the banned, kick only members, ...) come before the auth rules.
        await rooms.updateMembership(requester, req.params.roomId, b.user_id, action, reasonOf(b));
        return {};
      });
    }
  }
};
