/**
 * Synapse's per-user rate-limit override admin API:
 * GET / POST / DELETE /_synapse/admin/v1/users/<user_id>/override_ratelimit.
 * `messages_per_second` and `burst_count` (non-negative integers, 0 by
 * default) replace rc_message for the user; 0 messages per second exempts
 * the user from every rate limit (services/ratelimit-overrides.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { invalidParam } from '../../matrix-error.js';
import { requireAdmin } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { localUserId } from './params.js';

type UserParams = { Params: { userId: string } };

const PATH = '/_synapse/admin/v1/users/:userId/override_ratelimit';

/** A body field: a non-negative integer, 0 when absent (Synapse's checks; booleans are not integers). */
function count(body: Record<string, unknown>, name: string): number {
  const v = body[name] ?? 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalidParam(`${JSON.stringify(v)} parameter must be a positive int`);
  return v;
}

export const adminRatelimitOverridePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const overrides = ctx.services.ratelimitOverrides;

  app.get<UserParams>(PATH, async (req) => {
    await requireAdmin(ctx, req);
    const userId = localUserId(ctx, req.params.userId, 'Can only look up local users');
    return (await overrides.read(userId)) ?? {};
  });

  app.post<UserParams>(PATH, async (req) => {
    await requireAdmin(ctx, req);
    const userId = localUserId(ctx, req.params.userId, 'Only local users can be ratelimited');
    const body = jsonObjectBody(req, 'allowEmpty');
    return overrides.set(userId, { messages_per_second: count(body, 'messages_per_second'), burst_count: count(body, 'burst_count') });
  });

  app.delete<UserParams>(PATH, async (req) => {
    await requireAdmin(ctx, req);
    const userId = localUserId(ctx, req.params.userId, 'Only local users can be ratelimited');
    await overrides.remove(userId);
    return {};
  });
};
