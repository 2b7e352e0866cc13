/**
 * The key server and notary APIs:
 * - GET /_matrix/key/v2/server: our published verify keys, signed by every
 *   key we hold. The `/{keyId}` form is deprecated but still asked for by old
 *   servers; it returns the same document.
 * - GET /_matrix/key/v2/query/{serverName} (and the deprecated
 *   `/{keyId}` form) and POST /_matrix/key/v2/query: other servers' key
 *   documents as we hold or fetch them, counter-signed by us.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { isValidServerName } from '../../core/event-format.js';
import { badJson, invalidParam } from '../../matrix-error.js';
import type { NotaryRequest } from '../../services/federation/keyring.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { QUERY_INTEGER, queryNumber } from '../query-schema.js';
import { raiseSchemaError } from '../request-schema.js';

/** The most servers one notary query may ask about, and key ids per server. */
export const MAX_NOTARY_SERVERS = 100;
export const MAX_NOTARY_KEY_IDS = 100;

const isServerName = (s: string) => s.length <= 255 && isValidServerName(s);

const TIMESTAMP = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };

const QUERY_BODY = {
  type: 'object',
  required: ['server_keys'],
  properties: {
    server_keys: {
      type: 'object',
      maxProperties: MAX_NOTARY_SERVERS,
      errmsg: `server_keys must be an object of at most ${MAX_NOTARY_SERVERS} servers`,
      additionalProperties: {
        type: 'object',
        maxProperties: MAX_NOTARY_KEY_IDS,
        errmsg: `each server's criteria must be an object of at most ${MAX_NOTARY_KEY_IDS} key ids`,
        additionalProperties: {
          type: 'object',
          errmsg: 'query criteria must be objects',
          properties: { minimum_valid_until_ts: TIMESTAMP },
        },
      },
    },
  },
};

const QUERY_STRING = { type: 'object', properties: { minimum_valid_until_ts: QUERY_INTEGER } };

function serverNameParam(name: string): string {
  if (!isServerName(name)) throw invalidParam(`Invalid server name: ${name.slice(0, 300)}`);
  return name;
}

export const keyServerPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { keyring } = ctx.services;

  app.get('/_matrix/key/v2/server', async () => ctx.keys.keyDocument());
  app.get('/_matrix/key/v2/server/:keyId', async () => ctx.keys.keyDocument());

  const getQuery = async (req: FastifyRequest<{ Params: { serverName: string; keyId?: string } }>) => {
    raiseSchemaError(req);
    const serverName = serverNameParam(req.params.serverName);
    const min = queryNumber(req, 'minimum_valid_until_ts');
    const criteria = min === undefined ? {} : { minimum_valid_until_ts: min };
    const keyId = req.params.keyId;
    return keyring.notaryQuery({ [serverName]: keyId === undefined || keyId === '' ? {} : { [keyId]: criteria } }, min);
  };
  app.get<{ Params: { serverName: string } }>('/_matrix/key/v2/query/:serverName', { schema: { querystring: QUERY_STRING } }, getQuery);
  app.get<{ Params: { serverName: string; keyId: string } }>('/_matrix/key/v2/query/:serverName/:keyId', { schema: { querystring: QUERY_STRING } }, getQuery);

  app.post('/_matrix/key/v2/query', { schema: { body: QUERY_BODY } }, async (req) => {
    const body = jsonObjectBody(req) as { server_keys: NotaryRequest };
    for (const name of Object.keys(body.server_keys)) {
      if (!isServerName(name)) throw badJson(`Invalid server name in server_keys: ${name.slice(0, 300)}`);
    }
    return keyring.notaryQuery(body.server_keys);
  });
};
