/**
 * Request bodies on the Matrix APIs are JSON whatever Content-Type says: the
 * guides' `curl -d '{...}'` sends application/x-www-form-urlencoded, and
 * Synapse parses it as JSON all the same. An empty body (zero bytes) is no
 * body; whitespace alone is not JSON.
 *
 * Bytes that are not UTF-8 and text that is not JSON become NOT_JSON,
 * refused (M_NOT_JSON, as Synapse) by jsonObjectBody when a handler reads
 * the body. Refused with 400 before any handler sees them: JSON no event or
 * request needs, nesting deeper than MAX_BODY_DEPTH, or a lone UTF-16
 * surrogate (`"\ud800"`) in a string or key (M_BAD_JSON), which could be
 * neither signed as canonical JSON nor stored.
 *
 * Handlers take a body that must be a JSON object through jsonObjectBody,
 * Synapse's one rule for every such route; it then raises the route
 * schema's failure, if any (request-schema.ts).
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { JsonParseError, parseJsonBody } from '../core/json-parse.js';
import { isJsonObject } from '../core/json-values.js';
import { badJson, notJson } from '../matrix-error.js';
import { checkBodySchema, checkSubstitutedBody } from './request-schema.js';

/** The deepest nesting of arrays and objects a request body may have (the top-level object is 1). */
export const MAX_BODY_DEPTH = 100;

/**
 * `req.body` for bytes that are not UTF-8 or text that is not JSON: refused
 * (M_NOT_JSON) only when a handler reads the body, as Synapse, whose
 * routes without a body never look at it.
 */
export const NOT_JSON: unique symbol = Symbol('not JSON');

export function installJsonBodyParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (!isUtf8(bytes)) return done(null, NOT_JSON);
    const text = bytes.toString('utf8');
    // Only zero bytes are no body, as Synapse: whitespace alone is text that is not JSON.
    if (text === '') return done(null, undefined);
    try {
      done(null, parseJsonBody(text, MAX_BODY_DEPTH));
    } catch (err) {
      if (err instanceof JsonParseError && err.kind !== 'syntax') return done(badJson(err.message), undefined);
      done(null, NOT_JSON);
    }
  });
}

/**
 * How a route takes a missing body, as Synapse's servlets do:
 * - `required` (most routes): no body is 400 M_NOT_JSON.
 * - `allowEmpty` (the membership routes, join by alias or id; Synapse's
 *   `allow_empty_body`): no body, and the JSON `null`, are `{}`.
 * - `emptyIsObject` (device deletion, for old clients that sent nothing):
 *   no body, or text that is not JSON, is `{}`; `null` is not an object.
 */
export type EmptyBody = 'required' | 'allowEmpty' | 'emptyIsObject';

/**
 * The request body as a JSON object. Text that is not JSON is 400
 * M_NOT_JSON "Content not JSON.", and anything but an object (`null`, an
 * array, a string, a number, a boolean) 400 M_BAD_JSON "Content must be a
 * JSON object.", whatever the route.
 */
export function jsonObjectBody(req: FastifyRequest, empty: EmptyBody = 'required'): Record<string, unknown> {
  const body = req.body;
  if (body === NOT_JSON) {
    if (empty === 'emptyIsObject') return substitute(req);
    throw notJson('Content not JSON.');
  }
  if (body === undefined) {
    if (empty === 'required') throw notJson('Content not JSON.');
    return substitute(req);
  }
  if (body === null && empty === 'allowEmpty') return substitute(req);
  if (!isJsonObject(body)) throw badJson('Content must be a JSON object.');
  checkBodySchema(req);
  return body;
}

/** `{}` for a route that takes no body as an empty one, checked against the route's body schema. */
function substitute(req: FastifyRequest): Record<string, unknown> {
  const body = {};
  checkSubstitutedBody(req, body);
  return body;
}
