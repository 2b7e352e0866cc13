/**
 * The `rc_*` rate-limit settings, read as Synapse's RatelimitConfig reads
 * them: each `{per_second, burst_count}` falls back key by key to Synapse's
 * default (RC_DEFAULTS), burst_count is truncated to an integer as Synapse's
 * int() does, and the legacy `rc_messages_per_second` /
 * `rc_message_burst_count` and `federation_rc_*` keys apply when the new
 * keys are absent. A per_second of 0 turns a limit off.
 */
import { RC_DEFAULTS, RC_FEDERATION_DEFAULTS } from './defaults.js';
import type { Reader } from './reader.js';
import type { FederationRateLimitConfig, HomeserverConfig, RateLimitConfig } from './types.js';

type RateLimitKeys =
  | 'rc_message'
  | 'rc_registration'
  | 'rc_registration_token_validity'
  | 'rc_login'
  | 'rc_admin_redaction'
  | 'rc_joins'
  | 'rc_joins_per_room'
  | 'rc_invites'
  | 'rc_third_party_invite'
  | 'rc_3pid_validation'
  | 'rc_media_create'
  | 'rc_presence'
  | 'rc_room_creation'
  | 'rc_user_directory'
  | 'rc_key_requests'
  | 'rc_delayed_event_mgmt'
  | 'rc_reports'
  | 'rc_federation';

export type RateLimitSettings = Pick<HomeserverConfig, RateLimitKeys>;

/** The mapping at a top-level key, or {} when absent. */
function section(r: Reader, key: string): Record<string, unknown> {
  const v = r.get(key);
  return v === undefined || v === null ? {} : r.obj(v, key);
}

function readRateLimit(r: Reader, v: unknown, path: string, def: RateLimitConfig): RateLimitConfig {
  if (v === undefined || v === null) return { ...def };
  const o = r.obj(v, path);
  const ps = o['per_second'];
  const bc = o['burst_count'];
  return {
    per_second: ps === undefined || ps === null ? def.per_second : r.num(ps, `${path}.per_second`, 0),
    // Synapse: int(burst_count).
    burst_count: bc === undefined || bc === null ? def.burst_count : Math.trunc(r.num(bc, `${path}.burst_count`, 0)),
  };
}

function readMessage(r: Reader): RateLimitConfig {
  if (r.has('rc_message')) return readRateLimit(r, r.get('rc_message'), 'rc_message', RC_DEFAULTS.rc_message);
  const legacy = (key: string, def: number) => (r.has(key) ? r.num(r.get(key), key, 0) : def);
  return {
    per_second: legacy('rc_messages_per_second', RC_DEFAULTS.rc_message.per_second),
    burst_count: Math.trunc(legacy('rc_message_burst_count', RC_DEFAULTS.rc_message.burst_count)),
  };
}

function readFederation(r: Reader): FederationRateLimitConfig {
  const out = { ...RC_FEDERATION_DEFAULTS };
  const fields = Object.keys(RC_FEDERATION_DEFAULTS) as (keyof FederationRateLimitConfig)[];
  if (r.has('rc_federation')) {
    const o = section(r, 'rc_federation');
    for (const f of fields) if (o[f] !== undefined && o[f] !== null) out[f] = r.int(o[f], `rc_federation.${f}`, 0);
    return out;
  }
  for (const f of fields) {
    const key = `federation_rc_${f}`;
    if (r.has(key) && r.get(key) !== null) out[f] = r.int(r.get(key), key, 0);
  }
  return out;
}

export function readRateLimits(r: Reader): RateLimitSettings {
  const top = (key: string, def: RateLimitConfig) => readRateLimit(r, r.get(key), key, def);
  const nested = (key: string, defs: Record<string, RateLimitConfig>) => {
    const o = section(r, key);
    return Object.fromEntries(Object.entries(defs).map(([k, def]) => [k, readRateLimit(r, o[k], `${key}.${k}`, def)]));
  };
  const login = nested('rc_login', { address: RC_DEFAULTS.rc_login_address, account: RC_DEFAULTS.rc_login_account, failed_attempts: RC_DEFAULTS.generic });
  const joins = nested('rc_joins', { local: RC_DEFAULTS.rc_joins_local, remote: RC_DEFAULTS.rc_joins_remote });
  const invites = nested('rc_invites', {
    per_room: RC_DEFAULTS.rc_invites_per_room,
    per_user: RC_DEFAULTS.rc_invites_per_user,
    per_issuer: RC_DEFAULTS.rc_invites_per_issuer,
  });
  const presence = nested('rc_presence', { per_user: RC_DEFAULTS.rc_presence_per_user });
  const settings: RateLimitSettings = {
    rc_message: readMessage(r),
    rc_registration: top('rc_registration', RC_DEFAULTS.generic),
    rc_registration_token_validity: top('rc_registration_token_validity', RC_DEFAULTS.rc_registration_token_validity),
    rc_login: login as RateLimitSettings['rc_login'],
    rc_joins: joins as RateLimitSettings['rc_joins'],
    rc_joins_per_room: top('rc_joins_per_room', RC_DEFAULTS.rc_joins_per_room),
    rc_invites: invites as RateLimitSettings['rc_invites'],
    rc_third_party_invite: top('rc_third_party_invite', RC_DEFAULTS.rc_third_party_invite),
    rc_3pid_validation: top('rc_3pid_validation', RC_DEFAULTS.rc_3pid_validation),
    rc_media_create: top('rc_media_create', RC_DEFAULTS.rc_media_create),
    rc_presence: presence as RateLimitSettings['rc_presence'],
    rc_room_creation: top('rc_room_creation', RC_DEFAULTS.rc_room_creation),
    rc_user_directory: top('rc_user_directory', RC_DEFAULTS.rc_user_directory),
    rc_key_requests: top('rc_key_requests', RC_DEFAULTS.rc_key_requests),
    rc_delayed_event_mgmt: top('rc_delayed_event_mgmt', RC_DEFAULTS.rc_delayed_event_mgmt),
    rc_reports: top('rc_reports', RC_DEFAULTS.rc_reports),
    rc_federation: readFederation(r),
  };
  // Synapse: set only when the key is present; otherwise admins' redactions count against rc_message.
  if (r.has('rc_admin_redaction')) settings.rc_admin_redaction = top('rc_admin_redaction', RC_DEFAULTS.generic);
  return settings;
}
