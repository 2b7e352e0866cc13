/**
 * Table shapes for kysely. One interface per table, grouped by family; each
 * family's queries live in their own module beside this file.
 */
import type { ColumnType, Generated } from 'kysely';

export interface ServerMetaTable {
  key: string;
  value: string;
  updated_ts: number;
}

export interface RoomsTable {
  room_id: string;
  room_version: string;
  creator: string | null;
  is_public: Generated<boolean>;
  current_state_group: number | null;
  created_ts: number;
}

export interface EventsTable {
  stream_ordering: Generated<number>;
  event_id: string;
  room_id: string;
  type: string;
  state_key: string | null;
  sender: string;
  depth: number;
  origin_server_ts: number;
  json: Record<string, unknown>;
  outlier: Generated<boolean>;
  /** An outlier that is a user's current membership: a remote invite to a room we do not hold, or its rejection (0021). */
  out_of_band: Generated<boolean>;
  /** The server of a membership event that reached the room through our send_join/leave/knock, which we pass on (0024). */
  send_on_behalf_of: string | null;
  rejected_reason: string | null;
  state_group_before: number | null;
  /** The state after the event (0017; null for outliers). */
  state_group_after: ColumnType<number | null, number | null | undefined, number | null>;
  /** Accepted by its auth events and the state before it, refused by the current state (0017). */
  soft_failed: Generated<boolean>;
  redacted_by: string | null;
  /** The state event this one replaced ('' none; NULL: stored before migration 0015). */
  replaces_state: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface StateGroupsTable {
  id: Generated<number>;
  room_id: string;
  prev_group: number | null;
  chain_depth: number;
}

export interface CurrentStateTable {
  room_id: string;
  type: string;
  state_key: string;
  event_id: string;
  membership: string | null;
  stream_ordering: number;
}

export interface Schema {
  server_meta: ServerMetaTable;
  users: UsersTable;
  profiles: ProfilesTable;
  devices: DevicesTable;
  access_tokens: AccessTokensTable;
  refresh_tokens: RefreshTokensTable;
  user_ips: UserIpsTable;
  registration_tokens: RegistrationTokensTable;
  ui_auth_sessions: UiAuthSessionsTable;
  ui_auth_session_credentials: UiAuthSessionCredentialsTable;
  account_data: AccountDataTable;
  rooms: RoomsTable;
  events: EventsTable;
  event_edges: { event_id: string; prev_event_id: string };
  event_auth_edges: { event_id: string; auth_id: string };
  forward_extremities: { room_id: string; event_id: string };
  state_groups: StateGroupsTable;
  state_groups_state: { state_group: number; type: string; state_key: string; event_id: string };
  current_state: CurrentStateTable;
  /** Primary key (user_id, device_id, txn_id, scope); `scope` since 0012 (the endpoint path, see storage/events.ts). */
  event_txn_ids: { user_id: string; device_id: string; txn_id: string; scope: Generated<string>; event_id: string; created_ts: number };
  registration_token_pending: RegistrationTokenPendingTable;
  room_aliases: RoomAliasesTable;
  room_forgotten: { user_id: string; room_id: string; event_id: string };
  users_pending_deactivation: { user_id: string; created_ts: number };
  event_relations: EventRelationsTable;
  threads: ThreadsTable;
}

export interface UsersTable {
  user_id: string;
  localpart: string;
  password_hash: string | null;
  admin: Generated<boolean>;
  is_guest: Generated<boolean>;
  deactivated: Generated<boolean>;
  erased: Generated<boolean>;
  shadow_banned: Generated<boolean>;
  locked: Generated<boolean>;
  user_type: string | null;
  appservice_id: string | null;
  creation_ts: Generated<number>;
}

export interface ProfilesTable {
  user_id: string;
  displayname: string | null;
  avatar_url: string | null;
}

export interface DevicesTable {
  user_id: string;
  device_id: string;
  display_name: string | null;
  last_seen_ts: number | null;
  last_seen_ip: string | null;
  last_seen_user_agent: string | null;
  hidden: Generated<boolean>;
  created_ts: Generated<number>;
}

export interface AccessTokensTable {
  id: Generated<number>;
  token_hash: string;
  user_id: string;
  device_id: string | null;
  valid_until_ms: number | null;
  refresh_token_id: number | null;
  puppets_user_id: string | null;
  used: Generated<boolean>;
  created_ts: Generated<number>;
}

export interface RefreshTokensTable {
  id: Generated<number>;
  token_hash: string;
  user_id: string;
  device_id: string;
  next_token_id: number | null;
  expiry_ts: number | null;
  ultimate_session_expiry_ts: number | null;
  created_ts: Generated<number>;
}

export interface UserIpsTable {
  user_id: string;
  device_id: string;
  ip: string;
  user_agent: string;
  last_seen: number;
}

export interface RegistrationTokensTable {
  token: string;
  uses_allowed: number | null;
  pending: Generated<number>;
  completed: Generated<number>;
  expiry_time: number | null;
}

export interface UiAuthSessionsTable {
  session_id: string;
  creation_time: number;
  uri: string;
  method: string;
  description: Generated<string>;
  clientdict: Generated<Record<string, unknown>>;
  serverdict: Generated<Record<string, unknown>>;
}

export interface UiAuthSessionCredentialsTable {
  session_id: string;
  stage_type: string;
  result: unknown;
}

export interface AccountDataTable {
  user_id: string;
  room_id: Generated<string>;
  type: string;
  content: Record<string, unknown>;
  stream_id: Generated<number>;
}

/** A registration-token use held by a UIA session that has not registered yet (migration 0003). */
export interface RegistrationTokenPendingTable {
  session_id: string;
  token: string;
  created_ts: number;
}

/** One row per event that relates to another through `m.relates_to` (migration 0006). */
export interface EventRelationsTable {
  event_id: string;
  room_id: string;
  relates_to_id: string;
  relation_type: string;
  aggregation_key: string | null;
  sender: string;
  type: string;
  depth: number;
  stream_ordering: number;
  origin_server_ts: number;
}

/** One row per thread root: its latest reply and reply count (migration 0006). */
export interface ThreadsTable {
  thread_id: string;
  room_id: string;
  latest_event_id: string;
  latest_depth: number;
  latest_stream_ordering: number;
  reply_count: number;
}

/** Each user's last notable presence, at a position of the presence stream (migration 0009). */
export interface PresenceTable {
  user_id: string;
  state: string;
  status_msg: string | null;
  last_active_ts: number;
  last_user_sync_ts: number;
  currently_active: boolean;
  stream_id: number;
}

// Migration 0009's tables, merged into Schema (declaration merging keeps this edit to an append).
export interface Schema {
  presence: PresenceTable;
}

/** A local room alias and who made it (migration 0005). */
export interface RoomAliasesTable {
  room_alias: string;
  room_id: string;
  creator: string | null;
  created_ts: number;
}

// Migration 0008's tables (receipts, push rules, notifications), merged into Schema.
export interface Schema {
  receipts: ReceiptsTable;
  push_rules: PushRulesTable;
  push_rules_defaults: PushRulesDefaultsTable;
  event_push_actions: EventPushActionsTable;
  push_read_marks: { user_id: string; room_id: string; thread_id: string; stream_ordering: number };
}

/** The latest receipt per (room, type, user, thread); thread_id '' is unthreaded (migration 0008). */
export interface ReceiptsTable {
  stream_id: Generated<number>;
  room_id: string;
  receipt_type: string;
  user_id: string;
  thread_id: Generated<string>;
  event_id: string;
  event_stream_ordering: number;
  data: Record<string, unknown>;
}

/** A user's own push rule (migration 0008). */
export interface PushRulesTable {
  user_id: string;
  kind: string;
  rule_id: string;
  priority: number;
  conditions: unknown[] | null;
  pattern: string | null;
  actions: unknown[];
  enabled: Generated<boolean>;
}

/** A user's change to a server-default push rule (migration 0008). */
export interface PushRulesDefaultsTable {
  user_id: string;
  kind: string;
  rule_id: string;
  enabled: boolean | null;
  actions: unknown[] | null;
}

/** One notification: an event whose push actions notify a user (migration 0008). */
export interface EventPushActionsTable {
  user_id: string;
  room_id: string;
  stream_ordering: number;
  event_id: string;
  thread_id: string;
  actions: unknown[];
  highlight: boolean;
  ts: number;
}

/** A filter uploaded through POST /user/{userId}/filter (migration 0007). */
export interface UserFiltersTable {
  user_id: string;
  filter_id: number;
  filter_json: Record<string, unknown>;
  created_ts: number;
}

export interface Schema {
  user_filters: UserFiltersTable;
}

// Migration 0010's tables (end-to-end encryption plumbing), merged into Schema.
export interface Schema {
  e2e_device_keys: { user_id: string; device_id: string; key_json: Record<string, unknown>; ts: number };
  e2e_one_time_keys: { user_id: string; device_id: string; algorithm: string; key_id: string; key_json: unknown; ts: number };
  e2e_fallback_keys: { user_id: string; device_id: string; algorithm: string; key_id: string; key_json: unknown; used: Generated<boolean> };
  device_lists_stream: { stream_id: Generated<number>; user_id: string; device_id: Generated<string>; ts: number };
  e2e_cross_signing_keys: { user_id: string; key_type: string; key_json: Record<string, unknown>; stream_id: number };
  e2e_cross_signing_signatures: { user_id: string; key_id: string; target_user_id: string; target_device_id: string; signature: string };
  device_inbox: { stream_id: Generated<number>; user_id: string; device_id: string; message_json: Record<string, unknown>; ts: number };
  to_device_txns: { user_id: string; device_id: string; txn_id: string; ts: number };
  e2e_room_keys_versions: E2eRoomKeysVersionsTable;
  e2e_room_keys: E2eRoomKeysTable;
}

/** A key backup version (migration 0010). */
export interface E2eRoomKeysVersionsTable {
  user_id: string;
  version: number;
  algorithm: string;
  auth_data: Record<string, unknown>;
  etag: Generated<number>;
  deleted: Generated<boolean>;
}

/** One backed-up room key session (migration 0010). */
export interface E2eRoomKeysTable {
  user_id: string;
  version: number;
  room_id: string;
  session_id: string;
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: Record<string, unknown>;
}

// Migration 0011's tables (media repository), merged into Schema.
export interface Schema {
  local_media: LocalMediaTable;
  local_media_thumbnails: { media_id: string; width: number; height: number; type: string; method: string; length: number };
  remote_media: RemoteMediaTable;
  remote_media_thumbnails: { media_origin: string; media_id: string; width: number; height: number; type: string; method: string; length: number };
}

/** Media uploaded to this server (migration 0011). */
export interface LocalMediaTable {
  media_id: string;
  media_type: string | null;
  media_length: number | null;
  upload_name: string | null;
  user_id: string | null;
  created_ts: number;
  last_access_ts: number | null;
  unused_expires_at: number | null;
  quarantined_by: string | null;
  safe_from_quarantine: Generated<boolean>;
  authenticated: Generated<boolean>;
  sha256: string | null;
}

/** A cached copy of another server's media (migration 0011). */
export interface RemoteMediaTable {
  media_origin: string;
  media_id: string;
  filesystem_id: string;
  media_type: string | null;
  media_length: number | null;
  upload_name: string | null;
  created_ts: number;
  last_access_ts: number | null;
  quarantined_by: string | null;
  authenticated: Generated<boolean>;
  sha256: string | null;
}

// Migration 0014's table (pushers), merged into Schema.
export interface Schema {
  pushers: PushersTable;
}

/** A pusher set through POST /pushers/set, and how far it has sent (migration 0014). */
export interface PushersTable {
  id: Generated<number>;
  user_id: string;
  device_id: string | null;
  kind: string;
  app_id: string;
  pushkey: string;
  pushkey_ts: number;
  app_display_name: string;
  device_display_name: string;
  profile_tag: Generated<string>;
  lang: string;
  data: Record<string, unknown>;
  last_stream_ordering: number;
  last_success: number | null;
  failing_since: number | null;
}

/** A user's rate-limit override, set through the admin API (migration 0016). */
export interface RatelimitOverrideTable {
  user_id: string;
  messages_per_second: number;
  burst_count: number;
}

export interface Schema {
  ratelimit_override: RatelimitOverrideTable;
}

/** Another server's verify key, as the keyring fetched it (migration 0018). */
export interface ServerKeysTable {
  server_name: string;
  key_id: string;
  /** Unpadded base64 of the 32-byte public key. */
  key: string;
  /** The `valid_until_ts` of the document the key came in. */
  valid_until_ts: number;
  /** For a key from `old_verify_keys`: when the server stopped using it; NULL for a current key. */
  expired_ts: number | null;
  fetched_at: number;
  /** The server the document came from: the key's own server, or the notary asked. */
  from_server: string;
  /** The signed key document as received. */
  key_json: Record<string, unknown>;
}

export interface Schema {
  server_keys: ServerKeysTable;
}

/** The outbound federation sender's tables (migration 0019). */
export interface FederationDestinationsTable {
  destination: string;
  retry_last_ts: number | null;
  retry_interval: number | null;
  failure_ts: number | null;
  last_successful_stream_ordering: number | null;
  /** The transaction in flight (its rows in the outboxes carry it too). */
  txn_id: string | null;
  /** Failed since its last success: the backlog is trimmed before the next attempt (kept through reset_connection). */
  catching_up: Generated<boolean>;
}

export interface FederationOutboxPdusTable {
  id: Generated<number>;
  destination: string;
  room_id: string;
  event_id: string;
  stream_ordering: number;
  txn_id: string | null;
}

export interface FederationOutboxEdusTable {
  id: Generated<number>;
  destination: string;
  edu_type: string;
  edu_key: string | null;
  content: Record<string, unknown>;
  txn_id: string | null;
}

export interface Schema {
  federation_stream_position: { lock: Generated<boolean>; stream_ordering: number };
  federation_destinations: FederationDestinationsTable;
  federation_destination_rooms: { destination: string; room_id: string; stream_ordering: number };
  federation_outbox_pdus: FederationOutboxPdusTable;
  federation_outbox_edus: FederationOutboxEdusTable;
}

/** OpenID tokens (migration 0023), by the SHA-256 of the token. */
export interface OpenIdTokensTable {
  token_hash: string;
  user_id: string;
  valid_until_ms: number;
}

export interface Schema {
  openid_tokens: OpenIdTokensTable;
}

/** Migration 0025: other servers' users' device lists, cached while they share a room with one of ours. */
export interface RemoteDeviceUsersTable {
  user_id: string;
  /** Their server's device-list stream position we hold the list at. */
  stream_id: number;
  /** An update was missed: fetch the list again before using it. */
  stale: Generated<boolean>;
  updated_ts: number;
}

export interface RemoteDevicesTable {
  user_id: string;
  device_id: string;
  display_name: string | null;
  /** The device's signed identity keys; null for a device without them. */
  keys: Record<string, unknown> | null;
}

export interface RemoteCrossSigningKeysTable {
  user_id: string;
  /** `master` or `self_signing`. */
  key_type: string;
  key_json: Record<string, unknown>;
}

export interface Schema {
  remote_device_users: RemoteDeviceUsersTable;
  remote_devices: RemoteDevicesTable;
  remote_cross_signing_keys: RemoteCrossSigningKeysTable;
}
