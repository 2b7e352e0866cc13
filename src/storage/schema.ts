/**
 * Table shapes for kysely. One interface per table, grouped by family; each
 * family's queries live in their own module beside this file.
 */
import type { Generated } from 'kysely';

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
  rejected_reason: string | null;
  state_group_before: number | null;
  redacted_by: string | null;
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
  event_txn_ids: { user_id: string; device_id: string; txn_id: string; event_id: string; created_ts: number };
  registration_token_pending: RegistrationTokenPendingTable;
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
