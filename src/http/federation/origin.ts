/**
 * The origin of a federation request, for handlers of `/_matrix/federation/*`:
 * its X-Matrix signature checked by `FederationRequestAuth` over the method,
 * the request target as received and the JSON body. Held route-schema
 * failures are raised after it, as the client API raises them after the
 * access token.
 */
import type { FastifyRequest } from 'fastify';
import { notJson } from '../../matrix-error.js';
import type { AppContext } from '../context.js';
import { NOT_JSON } from '../json-body.js';
import { raiseSchemaError } from '../request-schema.js';

export async function requireOrigin(ctx: AppContext, req: FastifyRequest): Promise<string> {
  // A body that is not JSON cannot be what was signed.
  if (req.body === NOT_JSON) throw notJson();
  const origin = await ctx.services.federationAuth.authenticate({
    method: req.method,
    uri: req.raw.url ?? req.url,
    authorization: req.headers.authorization,
    content: req.body,
  });
  raiseSchemaError(req);
  return origin;
}
