/**
 * Profiles of local users, under r0 and v3: GET /profile/{userId}, and
 * GET/PUT/DELETE /profile/{userId}/displayname and /avatar_url.
 *
 * As Synapse: a user changes only their own profile (server admins anyone's);
 * display names are trimmed and at most 256 characters, avatar URLs at most
 * 1000; an empty string clears the field; `enable_set_displayname` /
 * `enable_set_avatar_url: false` freeze a field once it has a value; and
 * `require_auth_for_profile_requests` makes reads need an access token.
 * Another server's user's profile is asked of that server (`/query/profile`).
 * The checks on who may write, and the write, are ProfileService's.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { isValidUserId } from '../../core/auth/ids.js';
import { MatrixError } from '../../matrix-error.js';
import { profileNotFound, type ProfileField } from '../../services/profile.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** As Synapse; Ajv's maxLength counts code points, as Synapse (Python) does. */
const MAX_LENGTH: Record<ProfileField, number> = { displayname: 256, avatar_url: 1000 };

/** PUT /profile/{userId}/{field}: the field (required), a string of at most its length in code points. */
function fieldBody(field: ProfileField) {
  return {
    type: 'object',
    required: [field],
    properties: { [field]: { type: 'string', maxLength: MAX_LENGTH[field], errcode: 'M_INVALID_PARAM' } },
  };
}

function checkUserId(userId: string): void {
  if (!isValidUserId(userId) || Buffer.byteLength(userId) > 255) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid user id');
}

export const profilePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { config } = ctx;
  const { profiles } = ctx.services;

  /** Reads need a token only when the config asks; guests may read. */
  async function readAccess(req: FastifyRequest, userId: string): Promise<void> {
    if (config.require_auth_for_profile_requests) await requireUser(ctx, req, { allowGuest: true });
    checkUserId(userId);
  }

  for (const prefix of CLIENT_PREFIXES) {
    app.get<{ Params: { userId: string } }>(`${prefix}/profile/:userId`, async (req) => {
      const { userId } = req.params;
      await readAccess(req, userId);
      const profile = await profiles.get(userId);
      if (profile.displayname === null && profile.avatar_url === null) throw profileNotFound();
      return {
        ...(profile.displayname !== null ? { displayname: profile.displayname } : {}),
        ...(profile.avatar_url !== null ? { avatar_url: profile.avatar_url } : {}),
      };
    });

    for (const field of ['displayname', 'avatar_url'] as const) {
      const path = `${prefix}/profile/:userId/${field}`;

      app.get<{ Params: { userId: string } }>(path, async (req) => {
        const { userId } = req.params;
        await readAccess(req, userId);
        const profile = await profiles.get(userId);
        const value = profile[field];
        // The spec: 404 when the user has no such field.
        if (value === null) throw new MatrixError(404, 'M_NOT_FOUND', `The user has no ${field}`);
        return { [field]: value };
      });

      app.put<{ Params: { userId: string } }>(path, { schema: { body: fieldBody(field) } }, async (req) => {
        const { userId } = req.params;
        checkUserId(userId);
        // The spec lets guests change their display name, and nothing else.
        const requester = await requireUser(ctx, req, { allowGuest: field === 'displayname' });
        const raw = jsonObjectBody(req)[field] as string;
        rejectNul(raw, field);
        const value = field === 'displayname' ? raw.trim() : raw;
        await profiles.set(requester, userId, field, value === '' ? null : value);
        return {};
      });

      app.delete<{ Params: { userId: string } }>(path, async (req) => {
        const { userId } = req.params;
        checkUserId(userId);
        const requester = await requireUser(ctx, req, { allowGuest: field === 'displayname' });
        await profiles.set(requester, userId, field, null);
        return {};
      });
    }
  }
};
