/**
 * Access tokens on requests: `Authorization: Bearer …` or the deprecated
 * `access_token` query parameter, as the spec allows both.
 */
import type { FastifyRequest } from 'fastify';
import { forbidden, MatrixError, missingToken } from '../matrix-error.js';
import type { Requester } from '../services/auth.js';
import type { AppContext } from './context.js';
import { noteRequester } from './request-log.js';
import { raiseSchemaError } from './request-schema.js';

export function accessTokenOf(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new MatrixError(401, 'M_MISSING_TOKEN', 'Invalid Authorization header');
    return m[1];
  }
  const q = (req.query as Record<string, unknown> | undefined)?.['access_token'];
  return typeof q === 'string' && q !== '' ? q : undefined;
}

export interface AuthOptions {
  /** Guests may call this endpoint (the spec lists which). */
  allowGuest?: boolean;
  /** Leave a query-string schema failure for the caller to raise (requireAdmin: 403 comes first). */
  holdSchemaError?: boolean;
}

export async function requireUser(ctx: AppContext, req: FastifyRequest, opts: AuthOptions = {}): Promise<Requester> {
  const token = accessTokenOf(req);
  if (!token) throw missingToken();
  const requester = await ctx.services.auth.authenticate(token, req.ip, req.headers['user-agent'] ?? '');
  noteRequester(req, requester.userId);
  if (requester.isGuest && !opts.allowGuest) throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access not allowed');
  if (!opts.holdSchemaError) raiseSchemaError(req);
  return requester;
}

/** For /_synapse/admin: a signed-in server admin, or 403 M_FORBIDDEN. */
export async function requireAdmin(ctx: AppContext, req: FastifyRequest): Promise<Requester> {
  const requester = await requireUser(ctx, req, { holdSchemaError: true });
  if (!requester.isAdmin) throw forbidden('You are not a server admin');
  raiseSchemaError(req);
  return requester;
}
