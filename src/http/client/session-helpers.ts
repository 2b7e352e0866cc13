/**
 * Pieces shared by the session and account endpoints: field checks and
 * the request path (re-authentication through UIA is services/reauth.ts).
 */
import type { FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { containsNul } from '../../core/json-values.js';

/** Both client API prefixes; every route here exists under each. */
export const CLIENT_PREFIXES = ['/_matrix/client/r0', '/_matrix/client/v3'] as const;

/** Refuses a value the database could not hold (400 M_INVALID_PARAM), rather than failing with a 500. */
export function rejectNul(v: unknown, what: string): void {
  if (containsNul(v)) throw new MatrixError(400, 'M_INVALID_PARAM', `${what} may not contain U+0000`);
}

/** The `reason` a membership request gives (null counts as absent), for the member event's content. */
export function reasonOf(body: Record<string, unknown>): { reason?: string } {
  const r = body['reason'];
  if (r === undefined || r === null) return {};
  if (typeof r !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'reason must be a string');
  if (r.includes('\u0000')) throw new MatrixError(400, 'M_INVALID_PARAM', 'reason may not contain U+0000');
  return { reason: r };
}

/** A field that must be a string when present (null counts as absent). */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new MatrixError(400, 'M_INVALID_PARAM', `${key} must be a string`);
  rejectNul(v, key);
  return v;
}

/** A field that must be a boolean when present. */
export function optionalBool(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new MatrixError(400, 'M_BAD_JSON', `${key} must be true or false`);
  return v;
}

export function pathOf(req: FastifyRequest): string {
  return req.url.split('?', 1)[0] ?? req.url;
}
