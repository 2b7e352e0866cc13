/**
 * Registration on the client API:
 * - POST /_matrix/client/{r0,v3}/register (user-interactive auth; `kind=guest`)
 * - GET  /_matrix/client/{r0,v3}/register/available?username=
 * - GET  /_matrix/client/v1/register/m.login.registration_token/validity?token=
 * The meaning lives in services/registration.ts.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { accessTokenOf } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { raiseSchemaError } from '../request-schema.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { QUERY_STRING, queryString } from '../query-schema.js';

/**
 * The spec's POST /register fields, with Synapse's codes: a username that is
 * not a string is M_INVALID_USERNAME, any other field of the wrong type
 * M_INVALID_PARAM; null counts as not given where Synapse takes it so.
 * Lengths, the password policy and the username's grammar stay in the
 * service.
 */
const REGISTER_BODY = {
  type: 'object',
  properties: {
    username: { type: 'string', errcode: 'M_INVALID_USERNAME' },
    password: { type: 'string', nullable: true, errcode: 'M_INVALID_PARAM' },
    device_id: { type: 'string', nullable: true, errcode: 'M_INVALID_PARAM' },
    initial_device_display_name: { type: 'string', nullable: true, errcode: 'M_INVALID_PARAM' },
    inhibit_login: { type: 'boolean', errcode: 'M_INVALID_PARAM' },
    refresh_token: { type: 'boolean', errcode: 'M_INVALID_PARAM' },
  },
};

/**
 * The GET routes' parameter: a string, or the same repeated (Synapse reads
 * the first). Its absence is the service's to answer, after the checks
 * Synapse makes first (registration open, the rate limit).
 */
const AVAILABLE_QUERY = { type: 'object', properties: { username: QUERY_STRING } };
const TOKEN_VALIDITY_QUERY = { type: 'object', properties: { token: QUERY_STRING } };

export const registerPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { registration } = ctx.services;
  for (const prefix of CLIENT_PREFIXES) {
    app.post(`${prefix}/register`, { schema: { body: REGISTER_BODY } }, async (req) =>
      registration.register({
        body: jsonObjectBody(req),
        kind: queryString(req, 'kind') ?? 'user',
        ip: req.ip,
        uri: req.url.split('?', 1)[0] ?? req.url,
        method: req.method,
        hasAccessToken: accessTokenOf(req) !== undefined,
      }),
    );
    app.get(`${prefix}/register/available`, { schema: { querystring: AVAILABLE_QUERY } }, async (req) => {
      raiseSchemaError(req);
      return registration.usernameAvailable(queryString(req, 'username'));
    });
  }
  app.get('/_matrix/client/v1/register/m.login.registration_token/validity', { schema: { querystring: TOKEN_VALIDITY_QUERY } }, async (req) => {
    raiseSchemaError(req);
    return registration.tokenValidity(queryString(req, 'token'), req.ip);
  });
};
