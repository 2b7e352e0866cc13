/**
 * Pushers: GET /pushers and POST /pushers/set, and the sending loop's life.
 *
 * - Set: one transaction. Without `append` (the default) the same
 *   (app_id, pushkey) registered by other users goes, as the spec says. A
 *   new pusher remembers the device of the access token that set it (its
 *   pushers go when the device is deleted or logged out, see
 *   storage/devices.ts); setting it again keeps that device, takes the new
 *   settings and starts from the newest event, as Synapse does.
 * - `kind: null` deletes the caller's pusher for (app_id, pushkey).
 * - Kinds: "http" needs `data.url`, an http(s) URL with the path
 *   `/_matrix/push/v1/notify` (Synapse does not insist on https either).
 *   "email" is refused with 400 M_INVALID_PARAM: Axon sends no email (and
 *   keeps no email addresses). Other kinds are stored and listed, never
 *   sent, as Synapse does with kinds it has no pusher for.
 * - `push.enabled: false` or `start_pushers: false` leave the API working
 *   but start no sending loop, as in Synapse.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../../config/types.js';
import { MatrixError } from '../../matrix-error.js';
import { maxStreamOrdering } from '../../storage/events.js';
import { deletePusher, deletePushersOfOtherUsers, listPushers, upsertPusher, type PusherRow } from '../../storage/pushers.js';
import type { Schema } from '../../storage/schema.js';
import { SERVER_NAME_TAG, SERVER_VERSION } from '../../version.js';
import type { Notifier } from '../notifier.js';
import { outboundPolicy, outboundRanges } from '../outbound/outbound-config.js';
import { GatewayClient } from './gateway-client.js';
import type { PushService } from './push-service.js';
import { PUSHER_SENDER_DEFAULTS, PusherSender, type PusherSenderOptions } from './pusher-sender.js';
import type { StreamPositions } from '../streams/positions.js';
import { withSubsystemLogger } from '../../logger.js';
import { containsNul, objectOrEmpty } from '../../core/json-values.js';

export const NOTIFY_PATH = '/_matrix/push/v1/notify';
const MAX_PUSHKEY_BYTES = 512;
const MAX_APP_ID_CHARS = 64;
/** Gateways get this long to connect, and to answer. */
const GATEWAY_TIMEOUT_MS = 30_000;

/** A pusher as GET /pushers lists it. */
export interface PusherJson {
  pushkey: string;
  kind: string;
  app_id: string;
  app_display_name: string;
  device_display_name: string;
  profile_tag: string;
  lang: string;
  data: Record<string, unknown>;
}

export type PusherRequest =
  | { kind: null; appId: string; pushkey: string }
  | {
      kind: string;
      appId: string;
      pushkey: string;
      appDisplayName: string;
      deviceDisplayName: string;
      profileTag: string;
      lang: string;
      data: Record<string, unknown>;
      append: boolean;
    };

const missing = (names: string[]) => new MatrixError(400, 'M_MISSING_PARAM', `Missing parameters: ${names.join(', ')}`);
const invalid = (message: string) => new MatrixError(400, 'M_INVALID_PARAM', message);

/** A string field, present (the route's schema has checked its type). */
function str(body: Record<string, unknown>, key: string): string {
  const v = body[key] as string;
  if (v.includes('\u0000')) throw invalid(`${key} may not contain U+0000`);
  return v;
}

/**
 * Validates a POST /pushers/set body (400 M_MISSING_PARAM / M_INVALID_PARAM)
 * whose field types the route's schema has checked: which fields are
 * required (all of them named when missing, as Synapse; null counts as
 * missing but for `kind`), the limits and the URL.
 */
export function parsePusherRequest(body: Record<string, unknown>): PusherRequest {
  const absent = (k: string) => body[k] === undefined || (k !== 'kind' && body[k] === null);
  const deleting = body['kind'] === null;
  const required = deleting ? ['kind', 'app_id', 'pushkey'] : ['kind', 'app_id', 'app_display_name', 'device_display_name', 'pushkey', 'lang', 'data'];
  const lacking = required.filter(absent);
  if (lacking.length > 0) throw missing(lacking);

  const appId = str(body, 'app_id');
  if (appId === '' || [...appId].length > MAX_APP_ID_CHARS) throw invalid(`app_id must be 1 to ${MAX_APP_ID_CHARS} characters`);
  const pushkey = str(body, 'pushkey');
  if (pushkey === '' || Buffer.byteLength(pushkey) > MAX_PUSHKEY_BYTES) throw invalid(`pushkey must be 1 to ${MAX_PUSHKEY_BYTES} bytes`);
  if (deleting) return { kind: null, appId, pushkey };

  const kind = str(body, 'kind');
  if (kind === '') throw invalid('kind may not be empty');
  const appDisplayName = str(body, 'app_display_name');
  const deviceDisplayName = str(body, 'device_display_name');
  const lang = str(body, 'lang');
  const profileTag = body['profile_tag'] === undefined || body['profile_tag'] === null ? '' : str(body, 'profile_tag');
  const append = (body['append'] as boolean | undefined) ?? false;
  const d = body['data'] as Record<string, unknown>;
  if (containsNul(d)) throw invalid('data may not contain U+0000');
  if (d['format'] !== undefined && typeof d['format'] !== 'string') throw invalid('data.format must be a string');

  if (kind === 'http') {
    const url = d['url'];
    if (url === undefined || url === null) throw new MatrixError(400, 'M_MISSING_PARAM', "'url' required in data for HTTP pusher");
    if (typeof url !== 'string') throw invalid("'url' must be a string");
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalid("'url' must be an absolute URL");
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw invalid("'url' must be an https (or http) URL");
    if (parsed.pathname !== NOTIFY_PATH) throw invalid(`'url' must have a path of '${NOTIFY_PATH}'`);
  } else if (kind === 'email') {
    throw invalid('Email pushers are not supported: this server does not send email');
  }
  return { kind, appId, pushkey, appDisplayName, deviceDisplayName, profileTag, lang, data: d, append };
}

export function pusherJson(p: PusherRow): PusherJson {
  return {
    pushkey: p.pushkey,
    kind: p.kind,
    app_id: p.app_id,
    app_display_name: p.app_display_name,
    device_display_name: p.device_display_name,
    profile_tag: p.profile_tag,
    lang: p.lang,
    data: p.data,
  };
}

export interface PusherConfig {
  /** Whether this process sends (Synapse's `push.enabled` and `start_pushers`). */
  send: boolean;
  blacklist: string[];
  whitelist: string[];
  sender: PusherSenderOptions;
}

/** The pusher settings of homeserver.yaml, with Synapse's defaults. */
export function pusherConfig(config: HomeserverConfig): PusherConfig {
  const raw = config.raw['push'];
  const push = objectOrEmpty(raw);
  const { blacklist, whitelist } = outboundRanges(config);
  // Parsed now, so a bad entry stops the start even when this process does not send.
  outboundPolicy({ blacklist, whitelist });
  return {
    send: push['enabled'] !== false && config.raw['start_pushers'] !== false,
    blacklist,
    whitelist,
    sender: {
      ...PUSHER_SENDER_DEFAULTS,
      includeContent: push['include_content'] !== false,
      groupUnreadCountByRoom: push['group_unread_count_by_room'] !== false,
    },
  };
}

export interface PusherServiceDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
  push: PushService;
  logger: Logger;
  config: PusherConfig;
  positions: StreamPositions;
}

export class PusherService {
  private gateway?: GatewayClient;
  private sender?: PusherSender;

  constructor(private readonly d: PusherServiceDeps) {
    this.d = withSubsystemLogger(d, 'axon.push');
  }

  /** Starts the sending loop (unless sending is off). */
  async start(): Promise<void> {
    if (!this.d.config.send) return;
    this.gateway = new GatewayClient({
      blacklist: this.d.config.blacklist,
      whitelist: this.d.config.whitelist,
      timeoutMs: GATEWAY_TIMEOUT_MS,
      userAgent: `${SERVER_NAME_TAG}/${SERVER_VERSION}`,
    });
    this.sender = new PusherSender({
      db: this.d.db,
      notifier: this.d.notifier,
      push: this.d.push,
      gateway: this.gateway,
      logger: this.d.logger,
      options: this.d.config.sender,
      positions: this.d.positions,
    });
    await this.sender.start();
  }

  /** Stops the loop: no new sends, requests in flight aborted, runs finished. */
  async close(): Promise<void> {
    await this.sender?.close();
    await this.gateway?.close();
  }

  async list(userId: string): Promise<PusherJson[]> {
    return (await listPushers(this.d.db, userId)).map(pusherJson);
  }

  /** POST /pushers/set for the caller, whose access token is on `deviceId`. */
  async set(userId: string, deviceId: string | null, body: Record<string, unknown>): Promise<void> {
    const r = parsePusherRequest(body);
    if (r.kind === null) {
      const { appId, pushkey } = r;
      await this.d.db.transaction().execute((tx) => deletePusher(tx, userId, appId, pushkey));
      return;
    }
    const set = r;
    const id = await this.d.db.transaction().execute(async (tx) => {
      if (!set.append) {
        const others = await deletePushersOfOtherUsers(tx, set.appId, set.pushkey, userId);
        if (others.length > 0) this.d.logger.info({ app_id: set.appId, users: others.length }, "removed other users' pushers with the same pushkey");
      }
      return upsertPusher(tx, {
        userId,
        deviceId,
        kind: set.kind,
        appId: set.appId,
        pushkey: set.pushkey,
        pushkeyTs: Date.now(),
        appDisplayName: set.appDisplayName,
        deviceDisplayName: set.deviceDisplayName,
        profileTag: set.profileTag,
        lang: set.lang,
        data: set.data,
        lastStreamOrdering: await maxStreamOrdering(tx),
      });
    });
    if (set.kind === 'http') this.sender?.pusherSet(userId, id);
  }
}
