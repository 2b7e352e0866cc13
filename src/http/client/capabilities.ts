/**
 * GET /_matrix/client/{r0,v3}/capabilities: what this server lets the
 * signed-in user do, from the configuration (Synapse's keys).
 */
import type { FastifyPluginAsync } from 'fastify';
import { ROOM_VERSIONS } from '../../core/room-versions.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { rawBool } from '../../services/profile.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

export const capabilitiesPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { config } = ctx;
  const setDisplayname = rawBool(config.raw, 'enable_set_displayname', true);
  const setAvatarUrl = rawBool(config.raw, 'enable_set_avatar_url', true);
  const profileFields = [...(setDisplayname ? ['displayname'] : []), ...(setAvatarUrl ? ['avatar_url'] : [])];
  const body = {
    capabilities: {
      'm.change_password': { enabled: config.password_config.enabled && config.password_config.localdb_enabled },
      'm.room_versions': {
        default: config.default_room_version,
        available: Object.fromEntries([...ROOM_VERSIONS.values()].map((v) => [v.id, v.stability])),
      },
      'm.set_displayname': { enabled: setDisplayname },
      'm.set_avatar_url': { enabled: setAvatarUrl },
      // Only the two classic fields exist so far.
      'm.profile_fields': { enabled: profileFields.length > 0, allowed: profileFields },
      'm.3pid_changes': { enabled: false },
      'm.get_login_token': { enabled: false },
    },
  };

  for (const prefix of CLIENT_PREFIXES) {
    app.get(`${prefix}/capabilities`, async (req) => {
      await requireUser(ctx, req, { allowGuest: true });
      return body;
    });
  }
};
