/**
 * What every API area's handlers share beyond bodies (json-body.ts) and
 * schemas (request-schema.ts): the client API prefixes, the NUL check for
 * values the database cannot hold, and the request path.
 */
import type { FastifyRequest } from 'fastify';
import { MatrixError } from '../matrix-error.js';
import { containsNul } from '../core/json-values.js';

/** Both client API prefixes; every route here exists under each. */
export const CLIENT_PREFIXES = ['/_matrix/client/r0', '/_matrix/client/v3'] as const;

/** Refuses a value the database could not hold (400 M_INVALID_PARAM), rather than failing with a 500. */
export function rejectNul(v: unknown, what: string): void {
  if (containsNul(v)) throw new MatrixError(400, 'M_INVALID_PARAM', `${what} may not contain U+0000`);
}

export function pathOf(req: FastifyRequest): string {
  return req.url.split('?', 1)[0] ?? req.url;
}
