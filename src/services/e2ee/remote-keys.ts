/**
 * The keys of other servers' users for our clients' /keys/query and
 * /keys/claim: one federation request per server, all at once, each bounded
 * by the client's `timeout`. An answer is taken only for the users and
 * devices that server is responsible for and was asked about; a server
 * that fails is reported in `failures` under its name, in Synapse's shape
 * (`{status, message}`).
 */
import { domainOf } from '../../core/auth/ids.js';
import { isJsonObject } from '../../core/json-values.js';
import { FederationRequestError, type FederationClient } from '../federation/federation-client.js';

type Json = Record<string, unknown>;

/** Synapse's default wait for other servers' key answers. */
export const DEFAULT_REMOTE_TIMEOUT_MS = 10_000;

export interface RemoteKeysAnswer {
  deviceKeys: Record<string, Json>;
  masterKeys: Json;
  selfSigningKeys: Json;
  failures: Json;
}

function failureOf(err: unknown): Json {
  if (err instanceof FederationRequestError) return { status: err.status ?? 503, message: err.reason };
  return { status: 503, message: (err as Error).message };
}

/** Users grouped by their server. */
export function byServer<T>(entries: Iterable<[string, T]>): Map<string, Map<string, T>> {
  const out = new Map<string, Map<string, T>>();
  for (const [userId, v] of entries) {
    const server = domainOf(userId) ?? userId;
    let m = out.get(server);
    if (!m) out.set(server, (m = new Map()));
    m.set(userId, v);
  }
  return out;
}

export class RemoteKeys {
  constructor(private readonly client: Pick<FederationClient, 'request'>) {}

  /** POST /user/keys/query on each server for its users (device lists or null for all devices). */
  async query(users: Map<string, string[] | null>, timeoutMs = DEFAULT_REMOTE_TIMEOUT_MS): Promise<RemoteKeysAnswer> {
    const out: RemoteKeysAnswer = { deviceKeys: {}, masterKeys: {}, selfSigningKeys: {}, failures: {} };
    await Promise.all(
      [...byServer(users)].map(async ([server, asked]) => {
        const body = { device_keys: Object.fromEntries([...asked].map(([u, d]) => [u, d ?? []])) };
        let res: { json: unknown };
        try {
          res = await this.client.request({ destination: server, method: 'POST', path: '/_matrix/federation/v1/user/keys/query', body, timeoutMs, maxBytes: 4 * 1024 * 1024 });
        } catch (err) {
          out.failures[server] = failureOf(err);
          return;
        }
        const answer = isJsonObject(res.json) ? res.json : {};
        const dk = isJsonObject(answer['device_keys']) ? answer['device_keys'] : {};
        for (const [userId, devicesAsked] of asked) {
          const theirs = dk[userId];
          const devices: Json = {};
          if (isJsonObject(theirs)) {
            for (const [deviceId, keys] of Object.entries(theirs)) {
              if (devicesAsked !== null && devicesAsked.length > 0 && !devicesAsked.includes(deviceId)) continue;
              // A server answers only for its own users' own devices.
              if (isJsonObject(keys) && keys['user_id'] === userId && keys['device_id'] === deviceId) devices[deviceId] = keys;
            }
          }
          out.deviceKeys[userId] = devices;
          for (const [field, into] of [
            ['master_keys', out.masterKeys],
            ['self_signing_keys', out.selfSigningKeys],
          ] as const) {
            const all = answer[field];
            const key = isJsonObject(all) ? all[userId] : undefined;
            if (isJsonObject(key) && key['user_id'] === userId) into[userId] = key;
          }
        }
      }),
    );
    return out;
  }

  /** POST /user/keys/claim on each server for its users' devices. */
  async claim(
    wanted: readonly { userId: string; deviceId: string; algorithm: string }[],
    timeoutMs = DEFAULT_REMOTE_TIMEOUT_MS,
  ): Promise<{ oneTimeKeys: Record<string, Record<string, Json>>; failures: Json }> {
    const out = { oneTimeKeys: {} as Record<string, Record<string, Json>>, failures: {} as Json };
    const perUser = new Map<string, Record<string, string>>();
    for (const w of wanted) perUser.set(w.userId, { ...perUser.get(w.userId), [w.deviceId]: w.algorithm });
    await Promise.all(
      [...byServer(perUser)].map(async ([server, asked]) => {
        let res: { json: unknown };
        try {
          res = await this.client.request({
            destination: server,
            method: 'POST',
            path: '/_matrix/federation/v1/user/keys/claim',
            body: { one_time_keys: Object.fromEntries(asked) },
            timeoutMs,
            maxBytes: 4 * 1024 * 1024,
          });
        } catch (err) {
          out.failures[server] = failureOf(err);
          return;
        }
        const answer = isJsonObject(res.json) && isJsonObject(res.json['one_time_keys']) ? res.json['one_time_keys'] : {};
        for (const [userId, devicesAsked] of asked) {
          const theirs = answer[userId];
          if (!isJsonObject(theirs)) continue;
          for (const deviceId of Object.keys(devicesAsked)) {
            const keys = theirs[deviceId];
            if (isJsonObject(keys)) (out.oneTimeKeys[userId] ??= {})[deviceId] = keys;
          }
        }
      }),
    );
    return out;
  }
}
