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
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { memberReason, REASON, REASON_BODY } from './membership.js';

/** The body as a JSON object; the membership routes take no body (or `null`) as `{}`, as Synapse. */
function bodyObject(req: FastifyRequest, empty: EmptyBody = 'required'): JsonObject {
  return jsonObjectBody(req, empty) as JsonObject;
}

const USER_ID = /^@[^:]+:.+$/;

/** The spec's top-level /createRoom fields; what is inside the state events is checked as they are built. */
const CREATE_ROOM_BODY = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    topic: { type: 'string' },
    room_alias_name: { type: 'string' },
    room_version: { type: 'string' },
    visibility: { type: 'string', enum: ['public', 'private'] },
    preset: { type: 'string', enum: ['private_chat', 'trusted_private_chat', 'public_chat'], errcode: 'M_INVALID_PARAM' },
    invite: { type: 'array', items: { type: 'string', errcode: 'M_INVALID_PARAM' }, errcode: 'M_INVALID_PARAM' },
    is_direct: { type: 'boolean' },
    initial_state: { type: 'array', items: { type: 'object' } },
    creation_content: { type: 'object' },
    power_level_content_override: { type: 'object' },
  },
};

/** The body of invite, kick, ban and unban: the target (required) and an optional `reason`. */
const TARGET_BODY = {
  type: 'object',
  required: ['user_id'],
  properties: { user_id: { type: 'string', errcode: 'M_INVALID_PARAM' }, reason: REASON },
};

/** What the schema cannot say: user id grammar, and the shape of each initial state event. */
function validateCreateRoom(b: JsonObject): CreateRoomRequest {
  if (Array.isArray(b.invite) && !b.invite.every((u) => USER_ID.test(u as string))) {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'invite must be a list of user ids');
  }
  if (
    Array.isArray(b.initial_state) &&
    !(b.initial_state as JsonObject[]).every(
      (s) => typeof s['type'] === 'string' && isJsonObject(s['content']) && (s['state_key'] === undefined || typeof s['state_key'] === 'string'),
    )
  ) {
    throw new MatrixError(400, 'M_BAD_JSON', 'initial_state must be a list of {type, state_key, content}');
  }
  return b as unknown as CreateRoomRequest;
}

export const roomsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const rooms = ctx.services.rooms;

  const requireJoined = async (roomId: string, userId: string) => {
    const m = await rooms.membership(roomId, userId);
    if (m !== 'join') throw new MatrixError(403, 'M_FORBIDDEN', `User ${userId} not in room ${roomId}`);
  };

  for (const p of CLIENT_PREFIXES) {
    app.post(`${p}/createRoom`, { schema: { body: CREATE_ROOM_BODY } }, async (req) => {
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

    app.post<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/join`, { schema: { body: REASON_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const { roomId } = await ctx.services.joins.join(requester, req.params.roomId, { content: memberReason(bodyObject(req, 'allowEmpty')) });
      return { room_id: roomId };
    });

    app.post<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/leave`, { schema: { body: REASON_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const b = bodyObject(req, 'allowEmpty');
      await ctx.services.joins.leave(requester, req.params.roomId, memberReason(b));
      return {};
    });

    for (const action of ['invite', 'kick', 'ban', 'unban'] as const) {
      app.post<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/${action}`, { schema: { body: TARGET_BODY } }, async (req) => {
        const requester = await requireUser(ctx, req);
        const b = bodyObject(req, 'allowEmpty');
        const target = b.user_id as string;
        if (!USER_ID.test(target)) throw new MatrixError(400, 'M_INVALID_PARAM', 'user_id must be a user id');
        // Synapse's checks (unban only the banned, kick only members, ...) come before the auth rules.
        await rooms.updateMembership(requester, req.params.roomId, target, action, memberReason(b));
        return {};
      });
    }
  }
};
