/**
 * Synapse's documented defaults (schema/synapse-config.schema.yaml and the
 * config classes in synapse/config/), in the units HomeserverConfig uses.
 * Where Synapse has no default and Axon needs one, the comment says so.
 */
import type { FederationRateLimitConfig, ListenerConfig, RateLimitConfig } from './types.js';

/** Synapse: `DEFAULT_BIND_ADDRESSES` in synapse/config/server.py. The server binds '::' once for both. */
export const DEFAULT_BIND_ADDRESSES: readonly string[] = ['::', '0.0.0.0'];

/**
 * Axon's listener when `listeners` is absent. (Synapse would listen on
 * nothing; the generated config and every guide have this one.)
 */
export function defaultListeners(): ListenerConfig[] {
  return [
    {
      port: 8008,
      bind_addresses: [...DEFAULT_BIND_ADDRESSES],
      type: 'http',
      tls: false,
      x_forwarded: false,
      resources: [{ names: ['client', 'federation'], compress: false }],
    },
  ];
}

/** Synapse: KNOWN_LISTENER_TYPES. */
export const LISTENER_TYPES: ReadonlySet<string> = new Set(['http', 'metrics', 'manhole']);
/** Synapse: KNOWN_RESOURCES. */
export const LISTENER_RESOURCES: ReadonlySet<string> = new Set([
  'client', 'consent', 'federation', 'health', 'keys', 'media', 'metrics', 'openid', 'replication', 'static',
]);
/** Keys Synapse reads inside one `listeners` entry. */
export const LISTENER_KEYS: ReadonlySet<string> = new Set([
  'port', 'bind_addresses', 'bind_address', 'type', 'tls', 'x_forwarded', 'resources', 'additional_resources',
  'tag', 'request_id_header', 'path', 'mode',
]);

export const DEFAULT_MAX_UPLOAD_SIZE = '50M';
export const DEFAULT_MAX_IMAGE_PIXELS = '32M';
export const DEFAULT_MEDIA_STORE_PATH = 'media_store';
export const DEFAULT_TURN_USER_LIFETIME = '1h';
export const DEFAULT_KEY_REFRESH_INTERVAL = '1d';
export const DEFAULT_BCRYPT_ROUNDS = 12;
export const DEFAULT_TRUSTED_KEY_SERVERS = [{ server_name: 'matrix.org' }] as const;

/** Synapse: DEFAULT_THUMBNAIL_SIZES in synapse/config/repository.py. */
export const DEFAULT_THUMBNAIL_SIZES: readonly { width: number; height: number; method: 'crop' | 'scale' }[] = [
  { width: 32, height: 32, method: 'crop' },
  { width: 96, height: 96, method: 'crop' },
  { width: 320, height: 240, method: 'scale' },
  { width: 640, height: 480, method: 'scale' },
  { width: 800, height: 600, method: 'scale' },
];

/** psycopg2 pool bounds when `database.args` leaves them out (Synapse's documented example values). */
export const DEFAULT_CP_MIN = 5;
export const DEFAULT_CP_MAX = 10;

/**
 * Synapse: `max_request_body_size()` in synapse/app/_base.py: 200 x the
 * largest PDU (65536 bytes), or max_upload_size if that is larger.
 */
export const MAX_REQUEST_SIZE = 200 * 65536;

/**
 * Synapse: the RatelimitSettings defaults in synapse/config/ratelimiting.py
 * (what Synapse runs with; its config documentation agrees except for
 * rc_third_party_invite, documented as 0.2/10).
 */
export const RC_DEFAULTS = {
  /** Used where Synapse passes no explicit defaults (rc_registration, rc_login.failed_attempts, rc_admin_redaction). */
  generic: { per_second: 0.17, burst_count: 3 },
  rc_message: { per_second: 0.2, burst_count: 10 },
  rc_registration_token_validity: { per_second: 0.1, burst_count: 5 },
  rc_login_address: { per_second: 0.003, burst_count: 5 },
  rc_login_account: { per_second: 0.003, burst_count: 5 },
  rc_joins_local: { per_second: 0.1, burst_count: 10 },
  rc_joins_remote: { per_second: 0.01, burst_count: 10 },
  rc_joins_per_room: { per_second: 1, burst_count: 10 },
  rc_invites_per_room: { per_second: 0.3, burst_count: 10 },
  rc_invites_per_user: { per_second: 0.003, burst_count: 5 },
  rc_invites_per_issuer: { per_second: 0.3, burst_count: 10 },
  rc_third_party_invite: { per_second: 0.0025, burst_count: 5 },
  rc_3pid_validation: { per_second: 0.003, burst_count: 5 },
  rc_media_create: { per_second: 10, burst_count: 50 },
  rc_presence_per_user: { per_second: 0.1, burst_count: 1 },
  rc_room_creation: { per_second: 0.016, burst_count: 10 },
  rc_user_directory: { per_second: 0.016, burst_count: 200 },
  /** Not in Synapse's documentation ("obscure"), but read. */
  rc_key_requests: { per_second: 20, burst_count: 100 },
  rc_delayed_event_mgmt: { per_second: 1, burst_count: 5 },
  rc_reports: { per_second: 1, burst_count: 5 },
} satisfies Record<string, RateLimitConfig>;

/** Synapse: FederationRatelimitSettings. */
export const RC_FEDERATION_DEFAULTS: FederationRateLimitConfig = { window_size: 1000, sleep_limit: 10, sleep_delay: 500, reject_limit: 50, concurrent: 3 };
