/**
 * The ordered list of schema migrations. Names sort in the order they apply;
 * a migration, once released, is never edited: add the next number instead.
 */
import type { Migration } from 'kysely';
import * as m0001 from './0001_server_meta.js';
import * as m0002 from './0002_accounts.js';
import * as m0003 from './0003_registration.js';
import * as m0004 from './0004_rooms.js';
import * as m0005 from './0005_directory.js';
import * as m0006 from './0006_relations.js';
import * as m0007 from './0007_sync.js';
import * as m0008 from './0008_receipts_push.js';
import * as m0009 from './0009_directory_presence.js';
import * as m0010 from './0010_e2ee.js';
import * as m0011 from './0011_media.js';
import * as m0012 from './0012_txn_scope.js';
import * as m0013 from './0013_push_actions_index.js';
import * as m0014 from './0014_pushers.js';
import * as m0015 from './0015_replaces_state.js';
import * as m0016 from './0016_ratelimit_override.js';
import * as m0017 from './0017_event_persistence.js';
import * as m0018 from './0018_server_keys.js';
import * as m0019 from './0019_federation_sender.js';
import * as m0021 from './0021_out_of_band_memberships.js';
import * as m0023 from './0023_openid_tokens.js';
import * as m0024 from './0024_send_on_behalf_of.js';
import * as m0025 from './0025_remote_device_cache.js';

export const MIGRATIONS: Record<string, Migration> = {
  '0001_server_meta': m0001,
  '0002_accounts': m0002,
  '0003_registration': m0003,
  '0004_rooms': m0004,
  '0005_directory': m0005,
  '0006_relations': m0006,
  '0007_sync': m0007,
  '0008_receipts_push': m0008,
  '0009_directory_presence': m0009,
  '0010_e2ee': m0010,
  '0011_media': m0011,
  '0012_txn_scope': m0012,
  '0013_push_actions_index': m0013,
  '0014_pushers': m0014,
  '0015_replaces_state': m0015,
  '0016_ratelimit_override': m0016,
  '0017_event_persistence': m0017,
  '0018_server_keys': m0018,
  '0019_federation_sender': m0019,
  '0021_out_of_band_memberships': m0021,
  '0023_openid_tokens': m0023,
  '0024_send_on_behalf_of': m0024,
  '0025_remote_device_cache': m0025,
};
