/**
 * GET /_matrix/client/{r0,v3}/sync. Query parameters as the spec and
 * Synapse read them: `since` (a next_batch token; 400 M_INVALID_PARAM when
 * malformed, brought back to the present when from the future), `filter`
 * (a stored filter id or inline JSON), `full_state` and `use_state_after`
 * (true/false), `timeout` (milliseconds to wait when there is nothing new),
 * `set_presence` (online, unavailable, offline). A long-poll ends early when
 * the client goes away.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { PRESENCE_STATES, type PresenceState } from '../../services/presence.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

/** A true/false query parameter, as Synapse's parse_boolean. */
const BOOLEAN_PARAM = { type: 'string', enum: ['true', 'false'] };

/**
 * The spec's /sync query parameters, each given once (a repeated one is an
 * array, refused M_INVALID_PARAM). `timeout` is an integer in milliseconds
 * (a negative one waits not at all; an empty one is 0, as before).
 */
const SYNC_QUERY = {
  type: 'object',
  properties: {
    since: { type: 'string' },
    filter: { type: 'string' },
    timeout: { type: 'string', pattern: '^(-?[0-9]+)?$' },
    full_state: BOOLEAN_PARAM,
    set_presence: { type: 'string', enum: [...PRESENCE_STATES] },
    use_state_after: BOOLEAN_PARAM,
    'org.matrix.msc4222.use_state_after': BOOLEAN_PARAM,
  },
};

interface SyncQuery {
  from?: unknown;
  since?: string;
  filter?: string;
  timeout?: string;
  full_state?: 'true' | 'false';
  set_presence?: PresenceState;
  use_state_after?: 'true' | 'false';
  'org.matrix.msc4222.use_state_after'?: 'true' | 'false';
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
    app.get<{ Querystring: SyncQuery }>(`${prefix}/sync`, { schema: { querystring: SYNC_QUERY } }, async (req, reply) => {
      const query = req.query;
      if (query.from !== undefined) throw new MatrixError(400, 'M_INVALID_PARAM', "'from' is not a valid query parameter. Did you mean 'since'?");
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const timeoutMs = query.timeout === undefined || query.timeout === '' ? 0 : Math.max(0, Number(query.timeout));
      const filter = await services.filters.forSync(requester.userId, query.filter);
      let stateAfterKey: string | undefined;
      if (query.use_state_after === 'true') stateAfterKey = 'state_after';
      else if (query['org.matrix.msc4222.use_state_after'] === 'true') stateAfterKey = 'org.matrix.msc4222.state_after';
      return services.sync.sync({
        requester,
        since: query.since === '' ? undefined : query.since,
        filter,
        fullState: query.full_state === 'true',
        timeoutMs,
        setPresence: query.set_presence ?? 'online',
        stateAfterKey,
        signal: closedSignal(reply),
      });
    });
  }
};
