/**
 * Input parsing shared by the /_synapse/admin plugins, with Synapse's error
 * codes and messages: required parameters and the user id in the path
 * (query-string fragments and readers are in ../query-schema.ts).
 */
import type { FastifyRequest } from 'fastify';
import { invalidParam, MatrixError, missingParam } from '../../matrix-error.js';
import type { AppContext } from '../context.js';
import { queryString } from '../query-schema.js';

export function queryRequiredString(req: FastifyRequest, name: string): string {
  const v = queryString(req, name);
  if (v === undefined) throw missingParam(`Missing string query parameter '${name}'`);
  return v;
}

/** Synapse's `Missing params: [...]` check. */
export function requireParams(body: Record<string, unknown>, names: string[]): void {
  const absent = names.filter((n) => !(n in body));
  if (absent.length > 0) throw missingParam(`Missing params: [${absent.map((a) => `'${a}'`).join(', ')}]`);
}

/** A user id from the path: `@localpart:domain`, or 400 M_INVALID_PARAM as Synapse's UserID parsing says. */
export function parseUserId(s: string): string {
  if (!s.startsWith('@')) throw invalidParam("Expected UserID string to start with '@'");
  if (!s.slice(1).includes(':')) throw invalidParam("Expected UserID of the form '@localname:domain'");
  return s;
}

/** A local user id from the path; a remote one is 400 with the endpoint's message (M_UNKNOWN, as Synapse). */
export function localUserId(ctx: AppContext, raw: string, notLocalMessage: string): string {
  const userId = parseUserId(raw);
  if (!ctx.services.accounts.isMine(userId)) throw new MatrixError(400, 'M_UNKNOWN', notLocalMessage);
  return userId;
}

export const userNotFound = () => new MatrixError(404, 'M_NOT_FOUND', 'User not found');
