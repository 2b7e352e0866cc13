/**
 * /_synapse/admin/v1/registration_tokens: list, read, create, update and
 * delete the tokens that `registration_requires_token` asks for, with
 * Synapse's request and response shapes and its validation messages.
 * The handlers validate; RegistrationTokensService writes.
 */
import type { FastifyPluginAsync } from 'fastify';
import { invalidParam, MatrixError } from '../../matrix-error.js';
import type { RegistrationTokenChanges, RegistrationTokenRow } from '../../services/registration-tokens.js';
import { requireAdmin } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { QUERY_BOOLEAN, queryFlag } from '../query-schema.js';

const PREFIX = '/_synapse/admin/v1/registration_tokens';
/** The column is a PostgreSQL integer. */
const MAX_USES = 2_147_483_647;

/** `uses_allowed`: a non-negative integer or null (M_INVALID_PARAM, as Synapse). */
const USES_ALLOWED = {
  type: ['integer', 'null'],
  minimum: 0,
  maximum: MAX_USES,
  errcode: 'M_INVALID_PARAM',
  errmsg: 'uses_allowed must be a non-negative integer or null',
};
/** `expiry_time`: milliseconds since the epoch or null; "not in the past" is checked in the handler. */
const EXPIRY_TIME = {
  type: ['integer', 'null'],
  minimum: -Number.MAX_SAFE_INTEGER,
  maximum: Number.MAX_SAFE_INTEGER,
  errcode: 'M_INVALID_PARAM',
  errmsg: 'expiry_time must be an integer or null',
};
const INVALID = 'M_INVALID_PARAM';

/** POST …/new: a chosen `token`, or a `length` for a random one (read only when no token is given). */
const NEW_TOKEN_BODY = {
  type: 'object',
  properties: {
    token: {
      type: 'string',
      errcode: INVALID,
      errmsg: 'token must be a string',
      allOf: [
        { minLength: 1, maxLength: 64, errcode: INVALID, errmsg: 'token must not be empty and must not be longer than 64 characters' },
        { pattern: '^[A-Za-z0-9._~-]+$', errcode: INVALID, errmsg: 'token must consist only of characters matched by the regex [A-Za-z0-9._~-]' },
      ],
    },
    uses_allowed: USES_ALLOWED,
    expiry_time: EXPIRY_TIME,
  },
  if: { required: ['token'] },
  else: {
    properties: {
      length: {
        type: 'integer',
        errcode: INVALID,
        errmsg: 'length must be an integer',
        allOf: [{ minimum: 1, maximum: 64, errcode: INVALID, errmsg: 'length must be greater than zero and not greater than 64' }],
      },
    },
  },
};

/** PUT …/{token}: the fields to change. */
const UPDATE_TOKEN_BODY = { type: 'object', properties: { uses_allowed: USES_ALLOWED, expiry_time: EXPIRY_TIME } };

/** GET: `valid` filters on validity. */
const LIST_QUERY = { type: 'object', properties: { valid: QUERY_BOOLEAN } };

interface TokenBody extends Record<string, unknown> {
  token?: string;
  length?: number;
  uses_allowed?: number | null;
  expiry_time?: number | null;
}

const notFound = (token: string) => new MatrixError(404, 'M_NOT_FOUND', `No such registration token: ${token}`);

function shape(row: RegistrationTokenRow): Record<string, unknown> {
  return { token: row.token, uses_allowed: row.uses_allowed, pending: row.pending, completed: row.completed, expiry_time: row.expiry_time };
}

/** An expiry time as checked by the schema, refused if already past. */
function checkExpiryTime(v: number | null, now: number): number | null {
  if (v !== null && v < now) throw invalidParam('expiry_time must not be in the past');
  return v;
}

export const adminRegistrationTokensPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { registrationTokens: tokens } = ctx.services;

  app.get(PREFIX, { schema: { querystring: LIST_QUERY } }, async (req) => {
    await requireAdmin(ctx, req);
    const rows = await tokens.list(queryFlag(req, 'valid'));
    return { registration_tokens: rows.map(shape) };
  });

  app.post(`${PREFIX}/new`, { schema: { body: NEW_TOKEN_BODY } }, async (req) => {
    await requireAdmin(ctx, req);
    const body = jsonObjectBody(req) as TokenBody;
    const chosen = body.token;
    const length = chosen === undefined ? (body.length ?? 16) : 16;
    const usesAllowed = body.uses_allowed ?? null;
    const expiryTime = checkExpiryTime(body.expiry_time ?? null, Date.now());

    const row = await tokens.create({ ...(chosen !== undefined ? { token: chosen } : {}), length, usesAllowed, expiryTime });
    return shape(row);
  });

  app.get<{ Params: { token: string } }>(`${PREFIX}/:token`, async (req) => {
    await requireAdmin(ctx, req);
    const row = await tokens.get(req.params.token);
    if (!row) throw notFound(req.params.token);
    return shape(row);
  });

  app.put<{ Params: { token: string } }>(`${PREFIX}/:token`, { schema: { body: UPDATE_TOKEN_BODY } }, async (req) => {
    await requireAdmin(ctx, req);
    const body = jsonObjectBody(req) as TokenBody;
    const changes: RegistrationTokenChanges = {};
    if (body.uses_allowed !== undefined) changes.uses_allowed = body.uses_allowed;
    if (body.expiry_time !== undefined) changes.expiry_time = checkExpiryTime(body.expiry_time, Date.now());
    const row = await tokens.update(req.params.token, changes);
    if (!row) throw notFound(req.params.token);
    return shape(row);
  });

  app.delete<{ Params: { token: string } }>(`${PREFIX}/:token`, async (req) => {
    await requireAdmin(ctx, req);
    const deleted = await tokens.delete(req.params.token);
    if (!deleted) throw notFound(req.params.token);
    return {};
  });
};
