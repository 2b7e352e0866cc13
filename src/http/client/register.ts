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

/** The first value of a query parameter (a repeated one gives an array). */
function queryParam(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, string | string[] | undefined> | undefined)?.[name];
  return Array.isArray(v) ? v[0] : v;
}

export const registerPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { registration } = ctx.services;
  for (const v of ['r0', 'v3']) {
    app.post(`/_matrix/client/${v}/register`, async (req) =>
      registration.register({
        body: jsonObjectBody(req),
        kind: queryParam(req, 'kind') ?? 'user',
        ip: req.ip,
        uri: req.url.split('?', 1)[0] ?? req.url,
        method: req.method,
        hasAccessToken: accessTokenOf(req) !== undefined,
      }),
    );
    app.get(`/_matrix/client/${v}/register/available`, async (req) => registration.usernameAvailable(queryParam(req, 'username')));
  }
  app.get('/_matrix/client/v1/register/m.login.registration_token/validity', async (req) =>
    registration.tokenValidity(queryParam(req, 'token'), req.ip),
  );
};
