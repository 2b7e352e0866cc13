/**
 * Input parsing shared by the /_synapse/admin plugins, with Synapse's error
 * codes and messages: the query-string schema fragments and readers of the
 * values they checked, the user id in the path.
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

/*
 * Query-string schema fragments for the routes' `querystring` schemas. A
 * value is a string, or an array when the parameter is repeated (Synapse
 * then reads the first), so each fragment takes either. Failures are 400
 * M_INVALID_PARAM, raised by requireAdmin after the admin check.
 */
const oneOrMore = (s: Record<string, unknown>) => ({ anyOf: [s, { type: 'array', items: s }] });

/** `true` or `false`, as Synapse's parse_boolean. */
export const QUERY_BOOLEAN = oneOrMore({ type: 'string', enum: ['true', 'false'], errmsg: "Boolean query parameter '{name}' must be one of ['true', 'false']" });
/** A non-negative integer (Synapse's int() takes surrounding blanks and a sign), worded as Synapse's parse_integer. */
export const QUERY_INTEGER = oneOrMore({
  type: 'string',
  allOf: [
    { pattern: '^\\s*[+-]?[0-9]{1,15}\\s*$', errmsg: 'Query parameter {name} must be an integer' },
    { pattern: '^\\s*[+]?[0-9]+\\s*$', errmsg: 'Query parameter {name} must be a positive integer.' },
  ],
});
/** Any string. */
export const QUERY_STRING = oneOrMore({ type: 'string' });
/** One of `values`, worded as Synapse's parse_enum. */
export const queryEnumSchema = (values: readonly string[]) =>
  oneOrMore({ type: 'string', enum: [...values], errmsg: `Query parameter '{name}' must be one of [${values.map((v) => `'${v}'`).join(', ')}]` });
/** `dir`: backwards or forwards. */
export const QUERY_DIR = queryEnumSchema(['b', 'f']);

/** A QUERY_BOOLEAN parameter, already checked by the route schema. */
export function queryFlag(req: FastifyRequest, name: string): boolean | undefined {
  const v = queryString(req, name);
  return v === undefined ? undefined : v === 'true';
}

/** A QUERY_INTEGER parameter, already checked by the route schema. */
export function queryNumber(req: FastifyRequest, name: string): number | undefined {
  const v = queryString(req, name);
  return v === undefined ? undefined : Number(v.trim());
}

/** An enum parameter, already checked by the route schema. */
export function queryChoice<T extends string>(req: FastifyRequest, name: string): T | undefined {
  return queryString(req, name) as T | undefined;
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
