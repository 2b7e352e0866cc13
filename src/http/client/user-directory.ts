/**
 * POST /_matrix/client/{r0,v3}/user_directory/search: users matching a term
 * by user id or display name (case-insensitive, each word a prefix).
 *
 * As Synapse:
 * - Results are the users who share a joined room with the searcher or are
 *   joined to a public or world-readable room; with
 *   `user_directory.search_all_users: true`, every local user but the
 *   searcher. Deactivated, support and appservice users never appear;
 *   locked ones only with `user_directory.show_locked_users`.
 * - `user_directory.enabled: false` answers every search with no results.
 * - `limit` defaults to 10 and is held within 0..50; `limited` says that
 *   more users matched.
 * - Guests may not search (403 M_GUEST_ACCESS_FORBIDDEN); searches count
 *   against `rc_user_directory` (0.016/s, burst 200 by default).
 * - Ranked by Synapse's weights: exact word matches over prefix matches,
 *   display name over localpart over domain, users with a display name
 *   and avatar first.
 */
import type { FastifyPluginAsync } from 'fastify';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';
import { answeredWithoutInput } from '../request-schema.js';

const MAX_LIMIT = 50;

/** The search: `search_term` (required) and `limit` (null: the default); Synapse answers a wrong type M_INVALID_PARAM. */
const SEARCH_BODY = {
  type: 'object',
  required: ['search_term'],
  properties: {
    search_term: { type: 'string', errcode: 'M_INVALID_PARAM' },
    limit: { type: ['integer', 'null'], errcode: 'M_INVALID_PARAM' },
  },
};

export const userDirectoryPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { userDirectory } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.post(`${prefix}/user_directory/search`, { schema: { body: SEARCH_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      // Turned off, every search has no results, whatever it asked (as Synapse, which reads nothing).
      if (!userDirectory.admit(requester.userId)) {
        answeredWithoutInput(req);
        return { limited: false, results: [] };
      }
      const body = jsonObjectBody(req);
      const term = body['search_term'] as string;
      rejectNul(term, 'search_term');
      const limit = Math.max(0, Math.min((body['limit'] as number | null | undefined) ?? 10, MAX_LIMIT));

      const { limited, rows } = await userDirectory.search(requester.userId, term, limit);
      return {
        limited,
        results: rows.map((r) => ({
          user_id: r.user_id,
          ...(r.display_name !== null ? { display_name: r.display_name } : {}),
          ...(r.avatar_url !== null ? { avatar_url: r.avatar_url } : {}),
        })),
      };
    });
  }
};
