/**
 * A user's devices and the sessions on them: logging in (a device and its
 * tokens), logging out, renaming and deleting devices. Each write is one
 * transaction; once it has committed, the user's cached tokens are
 * forgotten (so the change applies to their very next request) and the
 * device-list change is announced.
 */
import type { Database } from '../storage/database.js';
import { deleteAccessTokenById } from '../storage/tokens.js';
import { deleteDeviceRows, ensureDevice, getDevice, listDevices, setDeviceDisplayName, type DeviceRow } from '../storage/devices.js';
import type { AuthService, NewSession, Requester } from './auth.js';
import type { DeviceListsService } from './e2ee/device-lists.js';
import type { Reauthenticator } from './reauth.js';
import type { UiaRequest } from './uia.js';

export interface DevicesServiceDeps {
  database: Database;
  auth: AuthService;
  deviceLists: DeviceListsService;
  /** UIA before a device is deleted. */
  reauth: Reauthenticator;
}

/** Who is logging out: the token's user and device (null for a device-less puppet token). */
export interface SessionOwner {
  userId: string;
  deviceId: string | null;
  tokenId: number;
}

export class DevicesService {
  constructor(private readonly d: DevicesServiceDeps) {}

  list(userId: string): Promise<DeviceRow[]> {
    return listDevices(this.d.database.db, userId);
  }

  get(userId: string, deviceId: string): Promise<DeviceRow | undefined> {
    return getDevice(this.d.database.db, userId, deviceId);
  }

  /**
   * A new session for a user who has proved who they are: the device
   * (created, or reused when it exists, whose display name then stays as
   * the spec says) and its tokens.
   */
  async login(opts: { userId: string; deviceId?: string; displayName?: string | null; refreshable: boolean }): Promise<NewSession> {
    return this.d.database.db.transaction().execute(async (tx) => {
      const existing = opts.deviceId ? await getDevice(tx, opts.userId, opts.deviceId) : undefined;
      return this.d.auth.createSession(tx, {
        userId: opts.userId,
        deviceId: opts.deviceId,
        displayName: existing ? null : (opts.displayName ?? null),
        refreshable: opts.refreshable,
      });
    });
  }

  /** POST /logout: the caller's device and its tokens go (only the token, for a device-less one). */
  async logout(who: SessionOwner): Promise<void> {
    await this.d.database.db.transaction().execute(async (tx) => {
      if (who.deviceId === null) {
        const hash = await deleteAccessTokenById(tx, who.tokenId);
        if (hash) this.d.auth.forget([hash]);
      } else {
        await this.d.auth.signOut(tx, who.userId, { deviceIds: [who.deviceId] });
        await deleteDeviceRows(tx, who.userId, { deviceIds: [who.deviceId] });
      }
    });
    // Once more after commit, so no request racing the transaction re-cached the token.
    this.d.auth.forgetUser(who.userId);
    if (who.deviceId !== null) await this.d.deviceLists.changed([who.userId]);
  }

  /** POST /logout/all: every device and token of the user goes. */
  async logoutAll(userId: string): Promise<void> {
    await this.d.database.db.transaction().execute(async (tx) => {
      await this.d.auth.signOut(tx, userId);
      await deleteDeviceRows(tx, userId, { exceptDeviceId: null });
    });
    this.d.auth.forgetUser(userId);
    await this.d.deviceLists.changed([userId]);
  }

  /** Deletes devices with every token on them; ones already gone are no error, as in Synapse. */
  /**
   * DELETE /devices/{id} and POST /delete_devices: re-authenticates the
   * requester through UIA, then deletes the devices (ending their sessions).
   * Like Synapse, deleting a device that is already gone succeeds.
   */
  async deleteAuthenticated(requester: Requester, request: UiaRequest, deviceIds: string[]): Promise<void> {
    await this.d.reauth.reauthenticate(requester, request);
    await this.delete(requester.userId, deviceIds);
  }

  async delete(userId: string, deviceIds: string[]): Promise<void> {
    await this.d.database.db.transaction().execute(async (tx) => {
      await this.d.auth.signOut(tx, userId, { deviceIds });
      await deleteDeviceRows(tx, userId, { deviceIds });
    });
    this.d.auth.forgetUser(userId);
    await this.d.deviceLists.changed([userId]);
  }

  /** Renames a device; false when it does not exist. */
  async rename(userId: string, deviceId: string, displayName: string): Promise<boolean> {
    const updated = await this.d.database.db.transaction().execute((tx) => setDeviceDisplayName(tx, userId, deviceId, displayName));
    if (updated) await this.d.deviceLists.changed([userId]);
    return updated;
  }

  /** Creates a device with no session on it (the admin API); an existing one is left as it is. */
  async create(userId: string, deviceId: string): Promise<void> {
    await this.d.database.db.transaction().execute((tx) => ensureDevice(tx, userId, deviceId));
  }
}
