/**
 * Query strings the way Synapse reads them: schema fragments for the routes'
 * `querystring` schemas, with Synapse's wording, and readers of the values
 * they checked. A repeated parameter is an array here; these fragments
 * take it, and the readers take its first value, as Synapse does.
 */
import type { FastifyRequest } from 'fastify';

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

/*
 * Query-string schema fragments for the routes' `querystring` schemas. A
 * value is a string, or an array when the parameter is repeated (Synapse
 * then reads the first), so each fragment takes either. Failures are 400
 * M_INVALID_PARAM, raised after authentication (request-schema.ts).
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
