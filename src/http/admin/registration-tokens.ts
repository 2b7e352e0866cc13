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
import { queryBoolean } from './params.js';

const PREFIX = '/_synapse/admin/v1/registration_tokens';
const TOKEN_RE = /^[A-Za-z0-9._~-]+$/;
/** The column is a PostgreSQL integer. */
const MAX_USES = 2_147_483_647;

const notFound = (token: string) => new MatrixError(404, 'M_NOT_FOUND', `No such registration token: ${token}`);

function shape(row: RegistrationTokenRow): Record<string, unknown> {
  return { token: row.token, uses_allowed: row.uses_allowed, pending: row.pending, completed: row.completed, expiry_time: row.expiry_time };
}

function parseUsesAllowed(v: unknown): number | null {
  if (v === null) return null;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_USES) return v;
  throw invalidParam('uses_allowed must be a non-negative integer or null');
}

function parseExpiryTime(v: unknown, now: number): number | null {
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalidParam('expiry_time must be an integer or null');
  if (v < now) throw invalidParam('expiry_time must not be in the past');
  return v;
}

export const adminRegistrationTokensPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { registrationTokens: tokens } = ctx.services;

  app.get(PREFIX, async (req) => {
    await requireAdmin(ctx, req);
    const valid = queryBoolean(req, 'valid');
    const rows = await tokens.list(valid);
    return { registration_tokens: rows.map(shape) };
  });

  app.post(`${PREFIX}/new`, async (req) => {
    await requireAdmin(ctx, req);
    const body = jsonObjectBody(req);
    let chosen: string | undefined;
    let length = 16;
    if ('token' in body) {
      const token = body['token'];
      if (typeof token !== 'string') throw invalidParam('token must be a string');
      if (token.length === 0 || token.length > 64) throw invalidParam('token must not be empty and must not be longer than 64 characters');
      if (!TOKEN_RE.test(token)) throw invalidParam('token must consist only of characters matched by the regex [A-Za-z0-9._~-]');
      chosen = token;
    } else if ('length' in body) {
      const l = body['length'];
      if (typeof l !== 'number' || !Number.isInteger(l)) throw invalidParam('length must be an integer');
      if (l <= 0 || l > 64) throw invalidParam('length must be greater than zero and not greater than 64');
      length = l;
    }
    const now = Date.now();
    const usesAllowed = 'uses_allowed' in body ? parseUsesAllowed(body['uses_allowed']) : null;
    const expiryTime = 'expiry_time' in body ? parseExpiryTime(body['expiry_time'], now) : null;

    const row = await tokens.create({ ...(chosen !== undefined ? { token: chosen } : {}), length, usesAllowed, expiryTime });
    return shape(row);
  });

  app.get<{ Params: { token: string } }>(`${PREFIX}/:token`, async (req) => {
    await requireAdmin(ctx, req);
    const row = await tokens.get(req.params.token);
    if (!row) throw notFound(req.params.token);
    return shape(row);
  });

  app.put<{ Params: { token: string } }>(`${PREFIX}/:token`, async (req) => {
    await requireAdmin(ctx, req);
    const body = jsonObjectBody(req);
    const changes: RegistrationTokenChanges = {};
    if ('uses_allowed' in body) changes.uses_allowed = parseUsesAllowed(body['uses_allowed']);
    if ('expiry_time' in body) changes.expiry_time = parseExpiryTime(body['expiry_time'], Date.now());
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
