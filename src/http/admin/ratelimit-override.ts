/**
 * Synapse's per-user rate-limit override admin API:
 * GET / POST / DELETE /_synapse/admin/v1/users/<user_id>/override_ratelimit.
 * `messages_per_second` and `burst_count` (non-negative integers, 0 by
 * default) replace rc_message for the user; 0 messages per second exempts
 * the user from every rate limit (services/ratelimit-overrides.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { requireAdmin } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { localUserId } from './params.js';

type UserParams = { Params: { userId: string } };

const PATH = '/_synapse/admin/v1/users/:userId/override_ratelimit';

/** A count: a non-negative integer, or null for 0 (M_INVALID_PARAM, as Synapse; booleans are not integers). */
const COUNT = { type: ['integer', 'null'], minimum: 0, maximum: Number.MAX_SAFE_INTEGER, errcode: 'M_INVALID_PARAM' };

/** POST: `messages_per_second` and `burst_count`, 0 when absent. */
const OVERRIDE_BODY = { type: 'object', properties: { messages_per_second: COUNT, burst_count: COUNT } };

interface OverrideBody {
  messages_per_second?: number | null;
  burst_count?: number | null;
}

export const adminRatelimitOverridePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const overrides = ctx.services.ratelimitOverrides;

  app.get<UserParams>(PATH, async (req) => {
    await requireAdmin(ctx, req);
    const userId = localUserId(ctx, req.params.userId, 'Can only look up local users');
    return (await overrides.read(userId)) ?? {};
  });

  app.post<UserParams>(PATH, { schema: { body: OVERRIDE_BODY } }, async (req) => {
    await requireAdmin(ctx, req);
    const userId = localUserId(ctx, req.params.userId, 'Only local users can be ratelimited');
    const body = jsonObjectBody(req, 'allowEmpty') as OverrideBody;
    return overrides.set(userId, { messages_per_second: body.messages_per_second ?? 0, burst_count: body.burst_count ?? 0 });
  });

  app.delete<UserParams>(PATH, async (req) => {
    await requireAdmin(ctx, req);
    const userId = localUserId(ctx, req.params.userId, 'Only local users can be ratelimited');
    await overrides.remove(userId);
    return {};
  });
};
