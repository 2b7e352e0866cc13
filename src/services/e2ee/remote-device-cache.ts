/**
 * The cache of other servers' users' device lists, as Synapse keeps it
 * (its DeviceListUpdater and `device_lists_remote_cache`):
 *
 * - Who: a remote user is cached only while they share a room with one of
 *   our users. The first /keys/query that needs them fills the cache from
 *   their server's `GET /user/devices/{userId}`; a user seen to share no
 *   room any more (at a leave or ban in a shared room, at a query, at one
 *   of their updates) is dropped, so a user who comes back is fetched anew.
 * - Updates: `m.device_list_update` is applied to the one device it names
 *   when every `prev_id` is the position we hold the list at (and it moves
 *   us to its `stream_id`); an update already seen is ignored; anything
 *   else (a gap, no `prev_id`, a malformed update) marks the list stale and
 *   starts one background fetch of the whole list (one per user at a time;
 *   its failure is logged, and the next query fetches again).
 *   `m.signing_key_update` replaces the master and self-signing keys it
 *   carries. Both are written in the transaction that records the change on
 *   the device-list stream, so a sync that names the user in
 *   `device_lists.changed` finds the cache already updated.
 * - Queries: a cached, current list is answered from here, with no request
 *   to the user's server (so it answers while that server is down); a
 *   missing or stale one is fetched first; users we cannot cache, and
 *   those whose fetch failed, are asked of their server live
 *   (RemoteKeys.query, whose failures are reported as before).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { domainOf } from '../../core/auth/ids.js';
import { containsNul, isJsonObject } from '../../core/json-values.js';
import type { PDU } from '../../core/pdu.js';
import type { Tx } from '../../storage/db.js';
import {
  cachedRemoteKeys,
  cachedRemoteUsers,
  deleteRemoteDevice,
  dropRemoteDeviceUsers,
  dropUnsharedRemoteDeviceUsers,
  lockCachedRemoteUser,
  markRemoteDeviceListStale,
  putRemoteCrossSigningKey,
  putRemoteDevice,
  replaceRemoteDeviceList,
  setRemoteDeviceStream,
  usersSharingARoomWithServer,
  type RemoteDeviceList,
} from '../../storage/remote-device-cache.js';
import type { Schema } from '../../storage/schema.js';
import type { FederationClient } from '../federation/federation-client.js';
import type { DeviceListsService } from './device-lists.js';
import { DEFAULT_REMOTE_TIMEOUT_MS, type RemoteKeys, type RemoteKeysAnswer } from './remote-keys.js';

type Json = Record<string, unknown>;

/** Devices taken from one user's /user/devices answer (a larger list is not cached). */
export const MAX_CACHED_DEVICES = 1000;
/** Users fetched for one /keys/query; the rest are asked live. */
const MAX_FETCHES_PER_QUERY = 100;
/** Fetches of whole lists running at once for one query. */
const FETCH_CONCURRENCY = 10;
/** A /user/devices answer may be this large. */
const MAX_LIST_BYTES = 4 * 1024 * 1024;
const MAX_ID_BYTES = 255;
const MAX_NAME_BYTES = 1024;
/** The wait for a background fetch of a list. */
const RESYNC_TIMEOUT_MS = 30_000;

const isStreamId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): v is string => typeof v === 'string' && v !== '' && Buffer.byteLength(v) <= MAX_ID_BYTES;

/** What to do with an `m.device_list_update` for a user whose list we hold at `cached` (see the top of this file). */
export function decideDeviceListUpdate(cached: { stream_id: number; stale: boolean }, streamId: unknown, prevIds: unknown): 'apply' | 'ignore' | 'resync' {
  if (!isStreamId(streamId)) return 'resync';
  if (cached.stale) return 'resync';
  if (streamId <= cached.stream_id) return 'ignore';
  if (!Array.isArray(prevIds) || prevIds.length === 0) return 'resync';
  return prevIds.every((p) => p === cached.stream_id) ? 'apply' : 'resync';
}

/** A cross-signing key of `userId` as another server sends it, or undefined when it is not one. */
function crossSigningKeyOf(v: unknown, userId: string): Json | undefined {
  return isJsonObject(v) && v['user_id'] === userId && isJsonObject(v['keys']) && !containsNul(v) ? v : undefined;
}

/** A device's identity keys as another server sends them: they must name the user and the device. */
function deviceKeysOf(v: unknown, userId: string, deviceId: string): Json | undefined {
  return isJsonObject(v) && v['user_id'] === userId && v['device_id'] === deviceId && !containsNul(v) ? v : undefined;
}

function displayNameOf(v: unknown): string | null {
  return typeof v === 'string' && Buffer.byteLength(v) <= MAX_NAME_BYTES && !v.includes('\u0000') ? v : null;
}

/** A /user/devices answer for `userId`, checked; undefined when it cannot be cached. Devices that fail the checks are left out. */
export function parseDeviceListAnswer(json: unknown, userId: string): RemoteDeviceList | undefined {
  if (!isJsonObject(json) || json['user_id'] !== userId || !isStreamId(json['stream_id']) || !Array.isArray(json['devices'])) return undefined;
  if (json['devices'].length > MAX_CACHED_DEVICES) return undefined;
  const seen = new Set<string>();
  const devices: RemoteDeviceList['devices'][number][] = [];
  for (const d of json['devices']) {
    if (!isJsonObject(d) || !isId(d['device_id']) || seen.has(d['device_id'])) continue;
    const deviceId = d['device_id'];
    let keys: Json | null = null;
    if (d['keys'] !== undefined && d['keys'] !== null) {
      const k = deviceKeysOf(d['keys'], userId, deviceId);
      if (k === undefined) continue;
      keys = k;
    }
    seen.add(deviceId);
    devices.push({ deviceId, displayName: displayNameOf(d['device_display_name']), keys });
  }
  const list: RemoteDeviceList = { userId, streamId: json['stream_id'], devices };
  const master = crossSigningKeyOf(json['master_key'], userId);
  const selfSigning = crossSigningKeyOf(json['self_signing_key'], userId);
  if (master) list.masterKey = master;
  if (selfSigning) list.selfSigningKey = selfSigning;
  return list;
}

export interface RemoteDeviceCacheDeps {
  db: Kysely<Schema>;
  serverName: string;
  client: Pick<FederationClient, 'request'>;
  /** Asks users' servers live (POST /user/keys/query): for users we do not cache, and when a fetch fails. */
  live: Pick<RemoteKeys, 'query'>;
  deviceLists: Pick<DeviceListsService, 'remoteChanged'>;
  logger: Logger;
}

export class RemoteDeviceCache {
  /** Fetches of whole lists in flight, one per user (a query and a background resync share it). */
  private readonly fetching = new Map<string, Promise<boolean>>();
  /** Users marked stale while their fetch was in flight: fetched again once it ends. */
  private readonly again = new Set<string>();
  private readonly stop = new AbortController();
  /** How often each path was taken (for tests and debugging). */
  readonly counts = { fetched: 0, fetchFailed: 0, applied: 0, ignored: 0, resyncs: 0, dropped: 0 };

  constructor(private readonly d: RemoteDeviceCacheDeps) {}

  /** The /keys/query answer for other servers' users (user → device ids, or null for all), in RemoteKeys.query's shape. */
  async query(users: Map<string, string[] | null>, timeoutMs = DEFAULT_REMOTE_TIMEOUT_MS): Promise<RemoteKeysAnswer> {
    const ids = [...users.keys()];
    const [cached, sharing] = await Promise.all([cachedRemoteUsers(this.d.db, ids), usersSharingARoomWithServer(this.d.db, ids, this.d.serverName)]);
    const unshared = [...cached.keys()].filter((u) => !sharing.has(u));
    if (unshared.length > 0) await this.drop(unshared);
    const fromCache = new Set<string>();
    const toFetch: string[] = [];
    for (const u of ids) {
      if (!sharing.has(u)) continue;
      const c = cached.get(u);
      if (c && !c.stale) fromCache.add(u);
      else if (toFetch.length < MAX_FETCHES_PER_QUERY) toFetch.push(u);
    }
    const deadline = Date.now() + timeoutMs;
    let next = 0;
    const worker = async () => {
      while (next < toFetch.length) {
        const u = toFetch[next++] as string;
        if (await this.fetchBy(u, deadline)) fromCache.add(u);
      }
    };
    await Promise.all(Array.from({ length: Math.min(FETCH_CONCURRENCY, toFetch.length) }, worker));

    const out = await this.answerFromCache(new Map([...users].filter(([u]) => fromCache.has(u))));
    const rest = new Map([...users].filter(([u]) => !fromCache.has(u)));
    if (rest.size > 0) {
      const live = await this.d.live.query(rest, Math.max(1000, deadline - Date.now()));
      Object.assign(out.deviceKeys, live.deviceKeys);
      Object.assign(out.masterKeys, live.masterKeys);
      Object.assign(out.selfSigningKeys, live.selfSigningKeys);
      Object.assign(out.failures, live.failures);
    }
    return out;
  }

  /** What the cache holds for these users (all cached and current). */
  private async answerFromCache(users: Map<string, string[] | null>): Promise<RemoteKeysAnswer> {
    const out: RemoteKeysAnswer = { deviceKeys: {}, masterKeys: {}, selfSigningKeys: {}, failures: {} };
    if (users.size === 0) return out;
    const { devices, crossSigning } = await cachedRemoteKeys(this.d.db, [...users.keys()]);
    for (const u of users.keys()) out.deviceKeys[u] = {};
    for (const d of devices) {
      const asked = users.get(d.user_id);
      if (d.keys === null || (asked && !asked.includes(d.device_id))) continue;
      const { unsigned, ...keys } = d.keys;
      const extra = isJsonObject(unsigned) ? unsigned : {};
      (out.deviceKeys[d.user_id] as Json)[d.device_id] = { ...keys, unsigned: d.display_name === null ? extra : { ...extra, device_display_name: d.display_name } };
    }
    for (const k of crossSigning) (k.key_type === 'master' ? out.masterKeys : out.selfSigningKeys)[k.user_id] = k.key_json;
    return out;
  }

  /** `fetch`, waited for until `deadline` at most (a background fetch it joins may run longer): whether the cache holds the list by then. */
  private async fetchBy(userId: string, deadline: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(1, deadline - Date.now()));
    });
    try {
      const fetched = this.fetch(userId, Math.max(1, deadline - Date.now())).catch((err: Error) => {
        this.d.logger.warn({ user_id: userId, err: err.message }, 'could not cache a remote device list');
        return false;
      });
      return await Promise.race([fetched, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fetches a user's whole list and caches it (one fetch per user at a time); whether the cache now holds it. */
  private fetch(userId: string, timeoutMs: number): Promise<boolean> {
    const running = this.fetching.get(userId);
    if (running) return running;
    const p = this.fetchOnce(userId, timeoutMs).finally(() => {
      this.fetching.delete(userId);
      if (this.again.delete(userId)) this.resync(userId);
    });
    this.fetching.set(userId, p);
    return p;
  }

  private async fetchOnce(userId: string, timeoutMs: number): Promise<boolean> {
    const server = domainOf(userId) ?? userId;
    let json: unknown;
    try {
      const res = await this.d.client.request({
        destination: server,
        method: 'GET',
        path: `/_matrix/federation/v1/user/devices/${encodeURIComponent(userId)}`,
        timeoutMs,
        maxBytes: MAX_LIST_BYTES,
        signal: this.stop.signal,
      });
      json = res.json;
    } catch (err) {
      this.counts.fetchFailed++;
      this.d.logger.info({ user_id: userId, destination: server, err: (err as Error).message }, 'could not fetch a remote device list');
      return false;
    }
    const list = parseDeviceListAnswer(json, userId);
    if (!list) {
      this.counts.fetchFailed++;
      this.d.logger.info({ user_id: userId, destination: server }, 'a remote device list answer could not be used');
      return false;
    }
    const stored = await this.d.db.transaction().execute(async (tx) => {
      // Only while they still share a room with ours, and never over a newer list an update brought meanwhile.
      if (!(await usersSharingARoomWithServer(tx, [userId], this.d.serverName)).has(userId)) return false;
      const held = await lockCachedRemoteUser(tx, userId);
      if (held && !held.stale && held.stream_id > list.streamId) return true;
      await replaceRemoteDeviceList(tx, list, Date.now());
      return true;
    });
    if (stored) this.counts.fetched++;
    return stored;
  }

  /** Fetches the list again in the background; failures are logged, never thrown. */
  private resync(userId: string): void {
    if (this.stop.signal.aborted) return;
    if (this.fetching.has(userId)) {
      this.again.add(userId);
      return;
    }
    this.counts.resyncs++;
    void this.fetch(userId, RESYNC_TIMEOUT_MS).catch((err: Error) => this.d.logger.warn({ user_id: userId, err: err.message }, 'could not resync a remote device list'));
  }

  private async drop(userIds: readonly string[]): Promise<void> {
    await dropRemoteDeviceUsers(this.d.db, userIds);
    this.counts.dropped += userIds.length;
  }

  /**
   * `m.device_list_update` from the user's server (the caller has checked
   * the user is theirs): recorded on the device-list stream as before and,
   * for a user we cache, applied to the cache in the same transaction.
   */
  async deviceListUpdate(userId: string, c: Json, now = Date.now()): Promise<void> {
    const deviceId = c['device_id'];
    let resync = false;
    await this.d.deviceLists.remoteChanged(userId, typeof deviceId === 'string' ? [deviceId] : [], now, async (tx) => {
      const held = await this.heldAndShared(tx, userId);
      if (!held) return;
      const decision = isId(deviceId) ? decideDeviceListUpdate(held, c['stream_id'], c['prev_id']) : 'resync';
      if (decision === 'ignore') {
        this.counts.ignored++;
        return;
      }
      if (decision === 'apply') {
        const keys = c['keys'] === undefined || c['keys'] === null ? null : deviceKeysOf(c['keys'], userId, deviceId as string);
        if (keys !== undefined) {
          if (c['deleted'] === true) await deleteRemoteDevice(tx, userId, deviceId as string);
          else await putRemoteDevice(tx, userId, deviceId as string, displayNameOf(c['device_display_name']), keys);
          await setRemoteDeviceStream(tx, userId, c['stream_id'] as number, now);
          this.counts.applied++;
          return;
        }
      }
      await markRemoteDeviceListStale(tx, userId, now);
      resync = true;
    });
    if (resync) this.resync(userId);
  }

  /** `m.signing_key_update`: recorded on the stream as before; the master and self-signing keys it carries replace the cached ones. */
  async signingKeyUpdate(userId: string, c: Json, now = Date.now()): Promise<void> {
    await this.d.deviceLists.remoteChanged(userId, [], now, async (tx) => {
      if (!(await this.heldAndShared(tx, userId))) return;
      const master = crossSigningKeyOf(c['master_key'], userId);
      const selfSigning = crossSigningKeyOf(c['self_signing_key'], userId);
      if (master) await putRemoteCrossSigningKey(tx, userId, 'master', master);
      if (selfSigning) await putRemoteCrossSigningKey(tx, userId, 'self_signing', selfSigning);
      if (master || selfSigning) this.counts.applied++;
    });
  }

  /** The cached user's row (locked), or undefined when not cached; a cached user who shares no room with ours any more is dropped. */
  private async heldAndShared(tx: Tx, userId: string): Promise<{ stream_id: number; stale: boolean } | undefined> {
    const held = await lockCachedRemoteUser(tx, userId);
    if (!held) return undefined;
    if ((await dropUnsharedRemoteDeviceUsers(tx, this.d.serverName, [userId])).length > 0) {
      this.counts.dropped++;
      return undefined;
    }
    return held;
  }

  /**
   * Inside the transaction of each live event: after a leave or ban, the
   * cached users it may have parted from ours (the user, or, when one of
   * ours left, the room's members) are dropped if they share no room with
   * ours any more.
   */
  async onPersisted(tx: Tx, pdu: PDU): Promise<void> {
    if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string') return;
    const membership = pdu.content['membership'];
    if (membership !== 'leave' && membership !== 'ban') return;
    const ours = domainOf(pdu.state_key) === this.d.serverName;
    const dropped = await dropUnsharedRemoteDeviceUsers(tx, this.d.serverName, ours ? [] : [pdu.state_key], ours ? pdu.room_id : undefined);
    this.counts.dropped += dropped.length;
  }

  /** Stops background fetches (those in flight are aborted). */
  close(): void {
    this.stop.abort();
  }
}
