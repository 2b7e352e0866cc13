/**
 * Input parsing shared by the /_synapse/admin plugins, with Synapse's error
 * codes and messages: query parameters (booleans, integers, enums), JSON
 * object bodies, and the user id in the path.
 */
import type { FastifyRequest } from 'fastify';
import { invalidParam, MatrixError, missingParam } from '../../matrix-error.js';
import type { AppContext } from '../context.js';

type Query = Record<string, string | string[] | undefined>;

function queryOf(req: FastifyRequest): Query {
  return (req.query ?? {}) as Query;
}

/** The first value of a query parameter (Synapse reads the first when one is repeated). */
export function queryString(req: FastifyRequest, name: string): string | undefined {
  const v = queryOf(req)[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a repeated query parameter. */
export function queryStrings(req: FastifyRequest, name: string): string[] {
  const v = queryOf(req)[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

export function queryRequiredString(req: FastifyRequest, name: string): string {
  const v = queryString(req, name);
  if (v === undefined) throw missingParam(`Missing string query parameter '${name}'`);
  return v;
}

export function queryBoolean(req: FastifyRequest, name: string): boolean | undefined {
  const v = queryString(req, name);
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw invalidParam(`Boolean query parameter '${name}' must be one of ['true', 'false']`);
}

/** A non-negative integer query parameter. */
export function queryInteger(req: FastifyRequest, name: string): number | undefined {
  const v = queryString(req, name);
  if (v === undefined) return undefined;
  const t = v.trim();
  if (!/^[+-]?\d+$/.test(t) || !Number.isSafeInteger(Number(t))) throw invalidParam(`Query parameter ${name} must be an integer`);
  const n = Number(t);
  if (n < 0) throw invalidParam(`Query parameter ${name} must be a positive integer.`);
  return n;
}

export function queryEnum<T extends string>(req: FastifyRequest, name: string, allowed: readonly T[]): T | undefined {
  const v = queryString(req, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) {
    throw invalidParam(`Query parameter '${name}' must be one of [${allowed.map((a) => `'${a}'`).join(', ')}]`);
  }
  return v as T;
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
