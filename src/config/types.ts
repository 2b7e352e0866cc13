/**
 * The validated configuration the server runs on. Field names follow
 * Synapse's homeserver.yaml keys (snake_case kept where they are Synapse's),
 * with durations in milliseconds and sizes in bytes once parsed.
 */

export interface ListenerResource {
  names: string[];
  compress: boolean;
}

export interface ListenerConfig {
  port: number;
  /** Addresses to bind; Synapse's default is ['::', '0.0.0.0'] — we bind '::' (dual stack) or each given. */
  bind_addresses: string[];
  type: 'http' | 'metrics' | 'manhole' | string;
  tls: boolean;
  x_forwarded: boolean;
  resources: ListenerResource[];
}

export type DatabaseConfig =
  | {
      kind: 'postgres';
      /** A connection string (from DATABASE_URL) or discrete args. */
      connectionString?: string;
      user?: string;
      password?: string;
      database?: string;
      host?: string;
      port?: number;
      /** libpq sslmode from `database.args.sslmode` (disable, prefer, require, verify-ca, verify-full). */
      sslmode?: string;
      cp_min: number;
      cp_max: number;
      /**
       * Synapse's `database.allow_unsafe_locale`: start (with a warning) on a
       * database whose LC_COLLATE or LC_CTYPE is not C. Present only when set.
       */
      allow_unsafe_locale?: boolean;
    }
  | {
      kind: 'embedded';
      /** Directory holding the embedded PostgreSQL (PGlite) data. */
      path: string;
    };

export interface RateLimitConfig {
  per_second: number;
  burst_count: number;
}

/** Synapse's `rc_federation` (FederationRatelimitSettings), applied per origin to authenticated federation requests (services/federation/origin-limiter.ts). */
export interface FederationRateLimitConfig {
  window_size: number;
  sleep_limit: number;
  sleep_delay: number;
  reject_limit: number;
  concurrent: number;
}

export interface HomeserverConfig {
  /** Files the configuration was read from, in order. */
  config_files: string[];
  /** Directory relative paths in the config resolve against (the first config file's directory). */
  config_dir: string;

  server_name: string;
  public_baseurl: string;
  /**
   * Whether to serve /.well-known/matrix/client. As in Synapse: true only when
   * public_baseurl was set explicitly (the https://<server_name>/ default may be wrong).
   */
  serve_client_wellknown: boolean;
  pid_file?: string;
  listeners: ListenerConfig[];
  /**
   * Synapse's `tls_certificate_path` (PEM: the certificate, then its
   * intermediates) and `tls_private_key_path` (PEM), for listeners with
   * `tls: true`; both are required once one has it. Read by startServer, and
   * again on SIGHUP.
   */
  tls_certificate_path?: string;
  tls_private_key_path?: string;
  database: DatabaseConfig;
  /** Directory for data the server keeps on disk (embedded database, etc.). */
  data_dir: string;
  log_config?: string;
  /**
   * The Axon-only `log_level` key as a pino level, if set: it overrides the
   * root level of log_config (or of the default JSON output, info), as the
   * AXON_LOG_LEVEL environment variable does.
   */
  log_level: string | undefined;

  signing_key_path: string;
  old_signing_keys: Record<string, { key: string; expired_ts: number }>;
  key_refresh_interval_ms: number;
  trusted_key_servers: { server_name: string; verify_keys?: Record<string, string>; accept_keys_insecurely?: boolean }[];
  suppress_key_server_warning: boolean;

  registration_shared_secret?: string;
  registration_shared_secret_path?: string;
  macaroon_secret_key?: string;
  form_secret?: string;
  enable_registration: boolean;
  enable_registration_without_verification: boolean;
  registration_requires_token: boolean;
  allow_guest_access: boolean;
  password_config: { enabled: boolean; localdb_enabled: boolean; pepper: string; policy: Record<string, unknown> };
  bcrypt_rounds: number;

  turn_uris: string[];
  turn_shared_secret?: string;
  turn_username?: string;
  turn_password?: string;
  turn_user_lifetime_ms: number;
  turn_allow_guests: boolean;

  max_upload_size: number;
  media_store_path: string;
  max_image_pixels: number;
  enable_authenticated_media: boolean;
  dynamic_thumbnails: boolean;
  thumbnail_sizes: { width: number; height: number; method: 'crop' | 'scale' }[];
  url_preview_enabled: boolean;
  /** CIDR ranges URL previews must not fetch; required (as in Synapse) when url_preview_enabled. */
  url_preview_ip_range_blacklist: string[];
  url_preview_ip_range_whitelist: string[];

  serve_server_wellknown: boolean;
  /** Extra content merged into /.well-known/matrix/client. */
  extra_well_known_client_content: Record<string, unknown>;
  presence_enabled: boolean;
  default_room_version: string;
  federation_domain_whitelist?: string[];
  /** Synapse's `federation_verify_certificates` (default true): check remote servers' TLS certificates. */
  federation_verify_certificates: boolean;
  /** Synapse's `federation_certificate_verification_whitelist`: server names (`*` globs) whose certificates are not checked. */
  federation_certificate_verification_whitelist: string[];
  /**
   * Synapse's `federation_custom_ca_list`: PEM files (resolved paths, read
   * and checked at load) whose CAs REPLACE the system ones for federation.
   */
  federation_custom_ca_list?: string[];
  /** Synapse's `federation_client_minimum_tls_version` (default "1"). */
  federation_client_minimum_tls_version: '1' | '1.1' | '1.2' | '1.3';
  allow_public_rooms_over_federation: boolean;
  allow_public_rooms_without_auth: boolean;
  user_directory: { enabled: boolean; search_all_users: boolean };
  report_stats: boolean;
  admin_contact?: string;
  require_auth_for_profile_requests: boolean;
  limit_profile_requests_to_users_who_share_rooms: boolean;
  auto_join_rooms: string[];
  max_request_body_size: number;

  /** Every `rc_*` key Synapse reads, with its defaults (see RC_DEFAULTS and docs/ADMIN.md for where each applies). */
  rc_message: RateLimitConfig;
  rc_registration: RateLimitConfig;
  rc_registration_token_validity: RateLimitConfig;
  rc_login: { address: RateLimitConfig; account: RateLimitConfig; failed_attempts: RateLimitConfig };
  /** Only when set: redactions of other users' events then count here instead of against rc_message. */
  rc_admin_redaction?: RateLimitConfig;
  rc_joins: { local: RateLimitConfig; remote: RateLimitConfig };
  rc_joins_per_room: RateLimitConfig;
  rc_invites: { per_room: RateLimitConfig; per_user: RateLimitConfig; per_issuer: RateLimitConfig };
  rc_third_party_invite: RateLimitConfig;
  rc_3pid_validation: RateLimitConfig;
  rc_media_create: RateLimitConfig;
  rc_presence: { per_user: RateLimitConfig };
  rc_room_creation: RateLimitConfig;
  rc_user_directory: RateLimitConfig;
  rc_key_requests: RateLimitConfig;
  rc_delayed_event_mgmt: RateLimitConfig;
  rc_reports: RateLimitConfig;
  rc_federation: FederationRateLimitConfig;

  /** Every key as read, merged over the files, for features that read extra keys later. */
  raw: Record<string, unknown>;
  /**
   * One line per secret that still holds the sample config's CHANGEME
   * placeholder, naming its key and file; startServer refuses to start while
   * any is listed (see placeholders.ts).
   */
  placeholder_secrets: string[];
}
