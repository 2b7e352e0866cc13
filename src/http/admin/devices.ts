/**
 * /_synapse/admin/v2/users/<user_id>/devices: list, create, show, rename
 * and delete a user's devices, and delete several at once. Deleting a
 * device ends its sessions at once (its tokens go and the auth cache
 * forgets them).
 */
import type { FastifyPluginAsync } from 'fastify';
import { invalidParam, MatrixError } from '../../matrix-error.js';
import { type DeviceRow as AdminDeviceRow, deleteDeviceRows, ensureDevice, getDevice as getUserDevice, listDevices as listUserDevices, setDeviceDisplayName as renameDevice } from '../../storage/devices.js';
import { getUser } from '../../storage/users.js';
import { requireAdmin } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { localUserId, requireParams } from './params.js';
import { announceDeviceListChange } from '../../services/e2ee/device-lists.js';

/** Synapse's MAX_DEVICE_DISPLAY_NAME_LEN. */
const MAX_DEVICE_DISPLAY_NAME_LEN = 100;
const PREFIX = '/_synapse/admin/v2/users/:userId';

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
  const { auth } = ctx.services;
  const db = () => ctx.database.db;

  async function targetUser(raw: string, notLocal = 'Can only lookup local users'): Promise<string> {
    const userId = localUserId(ctx, raw, notLocal);
    if (!(await getUser(db(), userId))) throw new MatrixError(404, 'M_NOT_FOUND', 'Unknown user');
    return userId;
  }

  async function deleteDevices(userId: string, deviceIds: string[]): Promise<void> {
    await db()
      .transaction()
      .execute(async (tx) => {
        await auth.signOut(tx, userId, { deviceIds });
        await deleteDeviceRows(tx, userId, { deviceIds });
      });
    // Again after the commit, so no request in between can have cached a deleted token.
    auth.forgetUser(userId);
    await announceDeviceListChange(db(), ctx.services.notifier, [userId], ctx.logger);
  }

  app.get<UserParams>(`${PREFIX}/devices`, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    // No dehydrated devices exist on Axon yet, so each is reported as not dehydrated.
    const devices = (await listUserDevices(db(), userId)).map((d) => ({ ...shape(d), dehydrated: false }));
    return { devices, total: devices.length };
  });

  app.post<UserParams>(`${PREFIX}/devices`, async (req, reply) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId, 'Can only create devices for local users');
    const body = jsonObjectBody(req);
    const deviceId = body['device_id'];
    if (deviceId === undefined || deviceId === null || deviceId === '') throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing device_id');
    if (typeof deviceId !== 'string') throw invalidParam('device_id must be a string');
    await db()
      .transaction()
      .execute((tx) => ensureDevice(tx, userId, deviceId));
    return reply.code(201).send({});
  });

  app.post<UserParams>(`${PREFIX}/delete_devices`, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    const body = jsonObjectBody(req);
    requireParams(body, ['devices']);
    const devices = body['devices'];
    if (!Array.isArray(devices) || !devices.every((d): d is string => typeof d === 'string')) {
      throw invalidParam('devices must be a list of device ids');
    }
    await deleteDevices(userId, devices);
    return {};
  });

  app.get<DeviceParams>(`${PREFIX}/devices/:deviceId`, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    const device = await getUserDevice(db(), userId, req.params.deviceId);
    if (!device) throw new MatrixError(404, 'M_NOT_FOUND', 'No device found');
    return shape(device);
  });

  app.put<DeviceParams>(`${PREFIX}/devices/:deviceId`, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    const body = jsonObjectBody(req, 'allowEmpty');
    const name = body['display_name'];
    if (name !== undefined && name !== null && typeof name !== 'string') throw invalidParam('display_name must be a string');
    if (typeof name === 'string' && name.length > MAX_DEVICE_DISPLAY_NAME_LEN) {
      throw new MatrixError(400, 'M_TOO_LARGE', `Device display name is too long (max ${MAX_DEVICE_DISPLAY_NAME_LEN})`);
    }
    const found = await db()
      .transaction()
      .execute(async (tx) => {
        // No name given: nothing changes, but the device must exist.
        if (typeof name !== 'string') return (await getUserDevice(tx, userId, req.params.deviceId)) !== undefined;
        return renameDevice(tx, userId, req.params.deviceId, name);
      });
    if (!found) throw new MatrixError(404, 'M_NOT_FOUND', 'Not found');
    return {};
  });

  app.delete<DeviceParams>(`${PREFIX}/devices/:deviceId`, async (req) => {
    await requireAdmin(ctx, req);
    const userId = await targetUser(req.params.userId);
    // Deleting a device that does not exist succeeds, as in Synapse.
    await deleteDevices(userId, [req.params.deviceId]);
    return {};
  });
};
