/**
 * Route schemas: the request bodies and query strings the spec defines are
 * described as JSON Schema on the route (`schema: { body, querystring }`) and
 * checked by one Ajv set up here so that it never changes what it checks:
 * no type coercion, no defaults, no removal of unknown properties. Each
 * schema is compiled once per process, however many routes and servers use it.
 *
 * A failure becomes the spec's error: a missing property is M_MISSING_PARAM
 * ("Missing params: ['x']", as Synapse words it), any other failure in a
 * body M_BAD_JSON and in a query string M_INVALID_PARAM. A schema may name
 * another code with the `errcode` keyword, and Synapse's message with
 * `errmsg` (where `{name}` stands for the property), beside the keyword that fails (Synapse answers M_INVALID_PARAM
 * for some body fields, and admin scripts see its wording).
 *
 * Synapse authenticates before it reads a request, so a bad token is 401
 * whatever the body holds. A failure is therefore held on the request
 * (`attachValidation`) and raised in this order:
 * - query string: by `requireUser`/`requireAdmin` once the requester is
 *   known, or by `raiseSchemaError` on routes without an access token;
 * - body: by `jsonObjectBody` once the body is known to be a JSON object
 *   (so text that is not JSON stays M_NOT_JSON), or by `checkBodySchema`.
 * A handler that returns without raising a held failure is a bug in the
 * handler (unless it said `answeredWithoutInput`): the request is still
 * refused with the failure, and it is logged.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyInstance, FastifyRequest, FastifySchemaValidationError, RouteOptions } from 'fastify';
import { MatrixError } from '../matrix-error.js';

/**
 * One Ajv for the process, as the routes need it: checks only (no coercion,
 * defaults or removal), strict about the schemas themselves, with the
 * `errcode`/`errmsg` keywords.
 */
const ajv = new Ajv({
  coerceTypes: false,
  useDefaults: false,
  removeAdditional: false,
  allErrors: false,
  // Errors carry their schema (parentSchema), where errcode and errmsg are read.
  verbose: true,
  // A schema Ajv would only warn about (a keyword without its type) stops the start instead.
  // (`required` in an `if` names properties defined beside it: allowed.)
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
});
ajv.addKeyword({ keyword: 'errcode', schemaType: 'string' });
ajv.addKeyword({ keyword: 'errmsg', schemaType: 'string' });

/**
 * Validators by schema object. A route schema is a const of its handler
 * file, registered under both client prefixes and on every listener (and,
 * in the tests, on every server a process starts): compiled once.
 */
const compiled = new WeakMap<object, ValidateFunction>();

/** Fastify's `validatorCompiler`: the process's one validator for this schema object. */
export function compiledValidator({ schema }: { schema: unknown }): ValidateFunction {
  const key = schema as object;
  let fn = compiled.get(key);
  if (fn === undefined) {
    fn = ajv.compile(key);
    compiled.set(key, fn);
  }
  return fn;
}

type Part = 'body' | 'querystring' | 'params' | 'headers';

interface HeldFailure {
  error: MatrixError;
  part: Part;
}

const held = new WeakMap<FastifyRequest, HeldFailure>();
const raised = new WeakSet<FastifyRequest>();

function describe(e: FastifySchemaValidationError, part: Part): string {
  const where = e.instancePath === '' ? part : `${part}${e.instancePath.replaceAll('/', '.')}`;
  if (e.keyword === 'required') return `Missing params: ['${String((e.params as { missingProperty?: unknown }).missingProperty)}']`;
  if (e.keyword === 'additionalProperties') {
    return `${where} may not have ${String((e.params as { additionalProperty?: unknown }).additionalProperty)}`;
  }
  return `${where} ${e.message ?? 'is invalid'}`;
}

/** An `errmsg` with `{name}` replaced by the failing property's name (so shared fragments can name theirs). */
function wordedFor(errmsg: string, e: FastifySchemaValidationError): string {
  const missing = e.keyword === 'required' ? (e.params as { missingProperty?: unknown }).missingProperty : undefined;
  const name =
    typeof missing === 'string'
      ? missing
      : (e.instancePath
          .split('/')
          .filter((x) => x !== '' && !/^[0-9]+$/.test(x))
          .pop() ?? '');
  return errmsg.replaceAll('{name}', name.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** Fastify's `schemaErrorFormatter`: the first failure as the spec's error. */
export function schemaErrorFormatter(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const part = (dataVar === 'query' ? 'querystring' : dataVar) as Part;
  const first = errors[0];
  if (first === undefined) return new MatrixError(400, part === 'body' ? 'M_BAD_JSON' : 'M_INVALID_PARAM', `Invalid ${part}`);
  const parent = (first as { parentSchema?: { errcode?: unknown; errmsg?: unknown } }).parentSchema;
  const own = parent?.errcode;
  const errcode = typeof own === 'string' ? own : first.keyword === 'required' ? 'M_MISSING_PARAM' : part === 'body' ? 'M_BAD_JSON' : 'M_INVALID_PARAM';
  // On an object schema, errmsg words its missing properties ({name} is the missing one).
  const message = typeof parent?.errmsg === 'string' ? wordedFor(parent.errmsg, first) : describe(first, part);
  return new MatrixError(400, errcode, message);
}

function failureOf(req: FastifyRequest): HeldFailure | undefined {
  const known = held.get(req);
  if (known) return known;
  const v = req.validationError as (Error & { validationContext?: string }) | undefined;
  if (v === undefined) return undefined;
  const part = (v.validationContext === 'query' ? 'querystring' : (v.validationContext ?? 'body')) as Part;
  const error = v instanceof MatrixError ? v : new MatrixError(400, part === 'body' ? 'M_BAD_JSON' : 'M_INVALID_PARAM', v.message);
  const failure = { error, part };
  held.set(req, failure);
  return failure;
}

function raise(req: FastifyRequest, parts: readonly Part[]): void {
  const failure = failureOf(req);
  if (failure === undefined || !parts.includes(failure.part)) return;
  raised.add(req);
  throw failure.error;
}

/** Raises a held query-string or path failure (after authentication, or at once on routes without it). */
export function raiseSchemaError(req: FastifyRequest): void {
  raise(req, ['querystring', 'params', 'headers']);
}

/** Raises a held body failure: for the end of `jsonObjectBody`, and for routes that read no fields of their body. */
export function checkBodySchema(req: FastifyRequest): void {
  raise(req, ['body']);
}

/**
 * For a handler that answers without reading its input at all (a feature
 * turned off, answered before the request is read, as Synapse does): the
 * held failure, if any, is dropped rather than raised.
 */
export function answeredWithoutInput(req: FastifyRequest): void {
  raised.add(req);
}

/**
 * Checks the object a route takes in place of no body (`{}` for the
 * membership routes) against the route's body schema, so that a required
 * field is still M_MISSING_PARAM.
 */
export function checkSubstitutedBody(req: FastifyRequest, body: Record<string, unknown>): void {
  const validate = req.getValidationFunction('body') as ((v: unknown) => boolean) & { errors?: FastifySchemaValidationError[] | null };
  if (typeof validate !== 'function') return;
  raised.add(req);
  if (!validate(body)) throw schemaErrorFormatter(validate.errors ?? [], 'body');
}

/**
 * Holds schema failures for the handler to raise in Synapse's order, and
 * refuses the request anyway if the handler never raised one.
 */
export function installRouteSchemas(app: FastifyInstance): void {
  app.setValidatorCompiler(compiledValidator);
  app.setSchemaErrorFormatter(schemaErrorFormatter);
  app.addHook('onRoute', (opts: RouteOptions) => {
    const schema = opts.schema as Record<string, unknown> | undefined;
    if (schema === undefined || (schema['body'] === undefined && schema['querystring'] === undefined && schema['params'] === undefined)) {
      return;
    }
    opts.attachValidation = true;
    const handler = opts.handler;
    opts.handler = async function schemaChecked(this: FastifyInstance, req, reply) {
      const result: unknown = await handler.call(this, req, reply);
      const failure = failureOf(req);
      if (failure !== undefined && !raised.has(req)) {
        req.log.error({ route: opts.url, part: failure.part }, 'route schema failure was not raised by the handler');
        throw failure.error;
      }
      return result;
    };
  });
}
