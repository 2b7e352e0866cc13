/**
 * The origin of a federation request, for handlers of `/_matrix/federation/*`:
 * its X-Matrix signature checked by `FederationRequestAuth` over the method,
 * the request target as received and the JSON body, then its turn under
 * `rc_federation` (services/federation/origin-limiter.ts). Held route-schema
 * failures are raised after it, as the client API raises them after the
 * access token.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { notJson } from '../../matrix-error.js';
import type { AppContext } from '../context.js';
import { NOT_JSON } from '../json-body.js';
import { raiseSchemaError } from '../request-schema.js';

/** The turn (rc_federation) each request holds until its response is done. */
const turns = new WeakMap<FastifyRequest, () => void>();

/** Gives a federation request's rc_federation turn back once its response is done or it is aborted. */
export function installOriginTurns(app: FastifyInstance): void {
  const release = async (req: FastifyRequest) => {
    turns.get(req)?.();
    turns.delete(req);
  };
  app.addHook('onResponse', release);
  app.addHook('onRequestAbort', release);
}

export async function requireOrigin(ctx: AppContext, req: FastifyRequest): Promise<string> {
  // A body that is not JSON cannot be what was signed.
  if (req.body === NOT_JSON) throw notJson();
  const origin = await ctx.services.federationAuth.authenticate({
    method: req.method,
    uri: req.raw.url ?? req.url,
    authorization: req.headers.authorization,
    content: req.body,
  });
  // rc_federation: the origin's turn, held until the response is done (installOriginTurns).
  turns.set(req, await ctx.services.federationLimiter.admit(origin));
  raiseSchemaError(req);
  return origin;
}
