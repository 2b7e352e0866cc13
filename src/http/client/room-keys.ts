/**
 * Server-side key backup, under r0 and v3 (services/e2ee/room-keys.ts):
 * - POST /room_keys/version, GET /room_keys/version (the current one),
 *   GET/PUT/DELETE /room_keys/version/{version};
 * - PUT/GET/DELETE /room_keys/keys, /room_keys/keys/{roomId} and
 *   /room_keys/keys/{roomId}/{sessionId}, each with `?version=`.
 * Only for the signed-in user's own backups; not for guests.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { KeyScope } from '../../services/e2ee/room-keys.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** A version body (POST and PUT /room_keys/version): `algorithm` and `auth_data`, both required. */
const VERSION_BODY = {
  type: 'object',
  required: ['algorithm', 'auth_data'],
  properties: { algorithm: { type: 'string', minLength: 1 }, auth_data: { type: 'object' } },
};

type KeysRequest = FastifyRequest<{ Params: { roomId?: string; sessionId?: string }; Querystring: { version?: unknown } }>;

function versionParam(req: KeysRequest): string | undefined {
  const v = req.query.version;
  // A repeated parameter counts as its first value.
  const first = Array.isArray(v) ? (v[0] as unknown) : v;
  return typeof first === 'string' ? first : undefined;
}

function scopeOf(req: KeysRequest): KeyScope {
  return { roomId: req.params.roomId, sessionId: req.params.sessionId };
}

export const roomKeysPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { roomKeys } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.post(`${prefix}/room_keys/version`, { schema: { body: VERSION_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      return { version: await roomKeys.createVersion(requester.userId, jsonObjectBody(req)) };
    });

    app.get(`${prefix}/room_keys/version`, async (req) => {
      const requester = await requireUser(ctx, req);
      return roomKeys.versionInfo(requester.userId);
    });

    type Version = { Params: { version: string } };
    app.get<Version>(`${prefix}/room_keys/version/:version`, async (req) => {
      const requester = await requireUser(ctx, req);
      return roomKeys.versionInfo(requester.userId, req.params.version);
    });

    app.put<Version>(`${prefix}/room_keys/version/:version`, { schema: { body: VERSION_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      await roomKeys.updateVersion(requester.userId, req.params.version, jsonObjectBody(req));
      return {};
    });

    app.delete<Version>(`${prefix}/room_keys/version/:version`, async (req) => {
      const requester = await requireUser(ctx, req);
      await roomKeys.deleteVersion(requester.userId, req.params.version);
      return {};
    });

    for (const path of ['/room_keys/keys', '/room_keys/keys/:roomId', '/room_keys/keys/:roomId/:sessionId']) {
      app.put(`${prefix}${path}`, async (req: KeysRequest) => {
        const requester = await requireUser(ctx, req);
        return roomKeys.uploadKeys(requester.userId, versionParam(req), scopeOf(req), jsonObjectBody(req));
      });

      app.get(`${prefix}${path}`, async (req: KeysRequest) => {
        const requester = await requireUser(ctx, req);
        return roomKeys.getKeys(requester.userId, versionParam(req), scopeOf(req));
      });

      app.delete(`${prefix}${path}`, async (req: KeysRequest) => {
        const requester = await requireUser(ctx, req);
        return roomKeys.deleteKeys(requester.userId, versionParam(req), scopeOf(req));
      });
    }
  }
};
