/**
 * Device management, under r0 and v3: GET /devices, GET/PUT/DELETE
 * /devices/{deviceId}, POST /delete_devices. Deleting a device (UIA) ends
 * its sessions at once. last_seen_ip/last_seen_ts come from AuthService,
 * which records them as tokens are used; the user agent stays admin-only.
 */
import type { FastifyPluginAsync } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import type { DeviceRow } from '../../storage/devices.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { checkDeviceDisplayName } from './login.js';
import { CLIENT_PREFIXES, pathOf, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

function deviceJson(d: DeviceRow): Record<string, unknown> {
  return { device_id: d.device_id, display_name: d.display_name, last_seen_ip: d.last_seen_ip, last_seen_ts: d.last_seen_ts };
}

/** PUT /devices/{id}: `display_name` (absent or null changes nothing). */
const RENAME_BODY = { type: 'object', properties: { display_name: { type: ['string', 'null'] } } };

/** DELETE /devices/{id}: only UIA's `auth`. */
const DELETE_DEVICE_BODY = { type: 'object', properties: { auth: { type: 'object' } } };

/** POST /delete_devices: the device ids to delete (and UIA's `auth`). */
const DELETE_DEVICES_BODY = {
  type: 'object',
  required: ['devices'],
  properties: { devices: { type: 'array', items: { type: 'string' } }, auth: { type: 'object' } },
};

const notFound = () => new MatrixError(404, 'M_NOT_FOUND', 'No device found');

export const devicesPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { devices } = ctx.services;

  // Device ids in paths are checked before they reach the database.
  app.addHook('preHandler', async (req) => {
    const params = req.params as { deviceId?: string } | undefined;
    if (params?.deviceId !== undefined) rejectNul(params.deviceId, 'Device ID');
  });

  for (const prefix of CLIENT_PREFIXES) {
    app.get(`${prefix}/devices`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      return { devices: (await devices.list(requester.userId)).map(deviceJson) };
    });

    app.get<{ Params: { deviceId: string } }>(`${prefix}/devices/:deviceId`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const device = await devices.get(requester.userId, req.params.deviceId);
      if (!device) throw notFound();
      return deviceJson(device);
    });

    app.put<{ Params: { deviceId: string } }>(`${prefix}/devices/:deviceId`, { schema: { body: RENAME_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const body = jsonObjectBody(req);
      const name = body['display_name'] as string | null | undefined;
      // Leaving display_name out (or null) changes nothing, as in Synapse.
      if (name === undefined || name === null) {
        if (!(await devices.get(requester.userId, req.params.deviceId))) throw notFound();
        return {};
      }
      rejectNul(name, 'display_name');
      checkDeviceDisplayName(name);
      if (!(await devices.rename(requester.userId, req.params.deviceId, name))) throw notFound();
      return {};
    });

    app.delete<{ Params: { deviceId: string } }>(`${prefix}/devices/:deviceId`, { schema: { body: DELETE_DEVICE_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req, 'emptyIsObject');
      await devices.deleteAuthenticated(requester, { uri: pathOf(req), method: req.method, body }, [req.params.deviceId]);
      req.log.info({ user_id: requester.userId, device_id: req.params.deviceId }, 'device deleted');
      return {};
    });

    app.post(`${prefix}/delete_devices`, { schema: { body: DELETE_DEVICES_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req, 'emptyIsObject');
      const ids = body['devices'] as string[];
      rejectNul(ids, 'devices');
      await devices.deleteAuthenticated(requester, { uri: pathOf(req), method: req.method, body }, ids);
      req.log.info({ user_id: requester.userId, devices: ids.length }, 'devices deleted');
      return {};
    });
  }
};
