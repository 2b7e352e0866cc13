/**
 * /_synapse/admin/v2/users/<user_id>/devices: list, create, show, rename
 * and delete a user's devices, and delete several at once. Deleting a
 * device ends its sessions at once (its tokens go and the auth cache
 * forgets them).
 */
import type { FastifyPluginAsync } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import type { DeviceRow as AdminDeviceRow } from '../../storage/devices.js';
import { requireAdmin } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { localUserId } from './params.js';

/** Synapse's MAX_DEVICE_DISPLAY_NAME_LEN. */
const MAX_DEVICE_DISPLAY_NAME_LEN = 100;
const PREFIX = '/_synapse/admin/v2/users/:userId';

/** POST devices: `device_id`, a non-empty string (absent, null or "" is M_MISSING_PARAM, as Synapse). */
const CREATE_DEVICE_BODY = {
  type: 'object',
  required: ['device_id'],
  errmsg: 'Missing {name}',
  properties: {
    device_id: {
      allOf: [
        { not: { enum: [null, ''] }, errcode: 'M_MISSING_PARAM', errmsg: 'Missing device_id' },
        { type: 'string', errcode: 'M_INVALID_PARAM', errmsg: 'device_id must be a string' },
      ],
    },
  },
};

/** POST delete_devices: `devices`, a list of device ids. */
const DELETE_DEVICES_BODY = {
  type: 'object',
  required: ['devices'],
  properties: { devices: { type: 'array', items: { type: 'string', errcode: 'M_INVALID_PARAM' }, errcode: 'M_INVALID_PARAM' } },
};

/** PUT devices/{deviceId}: an optional new `display_name` (null changes nothing; too long is M_TOO_LARGE, in the handler). */
const RENAME_DEVICE_BODY = {
  type: 'object',
  properties: { display_name: { type: ['string', 'null'], errcode: 'M_INVALID_PARAM' } },
};

type UserParams = { Params: { userId: string } };
type DeviceParams = { Params: { userId: string; deviceId: string } };

function shape(d: AdminDeviceRow): Record<string, unknown> {
  return {
    device_id: d.device_id,
    display_name: d.display_name,
    last_seen_ip: d.last_seen_ip,
    last_seen_user_agent: d.last_seen_user_agent,
    last_seen_ts: d.last_seen_ts,
    user_id: d.user_id,
  };
}

export const adminDevicesPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { accounts, devices } = ctx.services;

  async function targetUser(raw: string, notLocal = 'Can only lookup local users'): Promise<string> {
    const userId = localUserId(ctx, raw, notLocal);
    if (!(await accounts.getUser(userId))) throw new MatrixError(404, 'M_NOT_FOUND', 'Unknown user');
    return userId;
  }

  app.get<UserParams>(`${PREFIX}/devices`, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    // No dehydrated devices exist on Axon yet, so each is reported as not dehydrated.
    const list = (await devices.list(userId)).map((d) => ({ ...shape(d), dehydrated: false }));
    return { devices: list, total: list.length };
  });

  app.post<UserParams>(`${PREFIX}/devices`, { schema: { body: CREATE_DEVICE_BODY } }, async (req, reply) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId, 'Can only create devices for local users');
    const body = jsonObjectBody(req) as { device_id: string };
    await devices.create(userId, body.device_id);
    return reply.code(201).send({});
  });

  app.post<UserParams>(`${PREFIX}/delete_devices`, { schema: { body: DELETE_DEVICES_BODY } }, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    const body = jsonObjectBody(req) as { devices: string[] };
    await devices.delete(userId, body.devices);
    return {};
  });

  app.get<DeviceParams>(`${PREFIX}/devices/:deviceId`, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    const device = await devices.get(userId, req.params.deviceId);
    if (!device) throw new MatrixError(404, 'M_NOT_FOUND', 'No device found');
    return shape(device);
  });

  app.put<DeviceParams>(`${PREFIX}/devices/:deviceId`, { schema: { body: RENAME_DEVICE_BODY } }, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    const body = jsonObjectBody(req, 'allowEmpty') as { display_name?: string | null };
    const name = body.display_name;
    if (typeof name === 'string' && name.length > MAX_DEVICE_DISPLAY_NAME_LEN) {
      throw new MatrixError(400, 'M_TOO_LARGE', `Device display name is too long (max ${MAX_DEVICE_DISPLAY_NAME_LEN})`);
    }
    // No name given: nothing changes, but the device must exist.
    const found = typeof name === 'string' ? await devices.rename(userId, req.params.deviceId, name) : (await devices.get(userId, req.params.deviceId)) !== undefined;
    if (!found) throw new MatrixError(404, 'M_NOT_FOUND', 'Not found');
    return {};
  });

  app.delete<DeviceParams>(`${PREFIX}/devices/:deviceId`, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    // Deleting a device that does not exist succeeds, as in Synapse.
    await devices.delete(userId, [req.params.deviceId]);
    return {};
  });
};
