/**
 * GET /_matrix/client/{r0,v3}/sync. Query parameters as the spec and
 * Synapse read them: `since` (a next_batch token; 400 M_INVALID_PARAM when
 * malformed, brought back to the present when from the future), `filter`
 * (a stored filter id or inline JSON), `full_state` and `use_state_after`
 * (true/false), `timeout` (milliseconds to wait when there is nothing new),
 * `set_presence` (online, unavailable, offline). A long-poll ends early when
 * the client goes away.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { PRESENCE_STATES, type PresenceState } from '../../services/presence.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from './session-helpers.js';

function param(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new MatrixError(400, 'M_INVALID_PARAM', `Query parameter '${name}' must be given once`);
  return v;
}

function boolParam(req: FastifyRequest, name: string): boolean | undefined {
  const v = param(req, name);
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new MatrixError(400, 'M_INVALID_PARAM', `Boolean query parameter '${name}' must be one of ['true', 'false']`);
}

/** Aborts when the client closes the connection before the response is written. */
function closedSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

export const syncPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const services = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.get(`${prefix}/sync`, async (req, reply) => {
      if (param(req, 'from') !== undefined) throw new MatrixError(400, 'M_INVALID_PARAM', "'from' is not a valid query parameter. Did you mean 'since'?");
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const timeoutRaw = param(req, 'timeout');
      let timeoutMs = 0;
      if (timeoutRaw !== undefined && timeoutRaw !== '') {
        if (!/^-?\d+$/.test(timeoutRaw)) throw new MatrixError(400, 'M_INVALID_PARAM', "Query parameter 'timeout' must be an integer");
        timeoutMs = Math.max(0, Number(timeoutRaw));
      }
      const setPresence = param(req, 'set_presence') ?? 'online';
      if (!(PRESENCE_STATES as readonly string[]).includes(setPresence)) {
        throw new MatrixError(400, 'M_INVALID_PARAM', `Query parameter 'set_presence' must be one of [${PRESENCE_STATES.join(', ')}]`);
      }
      const since = param(req, 'since');
      const filter = await services.filters.forSync(requester.userId, param(req, 'filter'));
      let stateAfterKey: string | undefined;
      if (boolParam(req, 'use_state_after')) stateAfterKey = 'state_after';
      else if (boolParam(req, 'org.matrix.msc4222.use_state_after')) stateAfterKey = 'org.matrix.msc4222.state_after';
      return services.sync.sync({
        requester,
        since: since === '' ? undefined : since,
        filter,
        fullState: boolParam(req, 'full_state') ?? false,
        timeoutMs,
        setPresence: setPresence as PresenceState,
        stateAfterKey,
        signal: closedSignal(reply),
      });
    });
  }
};
