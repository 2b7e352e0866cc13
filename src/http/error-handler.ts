/**
 * Turns every failure into a Matrix error body: route misses (404/405
 * M_UNRECOGNIZED), body problems (M_NOT_JSON, M_BAD_JSON, M_TOO_LARGE),
 * schema failures, and anything unexpected (500 M_UNKNOWN, logged with the
 * request id, never with a stack trace sent to the client). JSON that canonical
 * JSON cannot hold is the client's fault (400 M_BAD_JSON) wherever it is found.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CanonicalJsonError } from '../core/canonical-json.js';
import { JsonParseError } from '../core/json-parse.js';
import { MatrixError } from '../matrix-error.js';

const ROUTE_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

export function installErrorHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?', 1)[0] ?? req.url;
    // A path that exists under another method is a 405, as Synapse answers.
    const other = ROUTE_METHODS.some((m) => m !== req.method && app.hasRoute({ method: m, url: path }));
    const err = other ? new MatrixError(405, 'M_UNRECOGNIZED', 'Unrecognized request') : new MatrixError(404, 'M_UNRECOGNIZED', 'Unrecognized request');
    void reply.code(err.statusCode).send(err.toJSON());
  });

  app.setErrorHandler((error: FastifyError | MatrixError | Error, req: FastifyRequest, reply: FastifyReply) => {
    const m = toMatrixError(error);
    if (m.statusCode >= 500) {
      req.log.error({ err: error }, 'request failed');
    } else if (m.statusCode === 429) {
      req.log.info({ errcode: m.errcode }, 'rate limited');
    }
    if (m.statusCode === 429 && typeof m.extra.retry_after_ms === 'number') {
      void reply.header('Retry-After', Math.ceil(m.extra.retry_after_ms / 1000));
    }
    void reply.code(m.statusCode).send(m.toJSON());
  });
}

export function toMatrixError(error: unknown): MatrixError {
  if (error instanceof MatrixError) return error;
  const e = error as Partial<FastifyError> & { validation?: unknown; validationContext?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new MatrixError(413, 'M_TOO_LARGE', 'Request body too large');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new MatrixError(400, 'M_NOT_JSON', 'Content not JSON.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new MatrixError(415, 'M_UNKNOWN', 'Unsupported content type');
    default:
      break;
  }
  // JSON that cannot be signed or hashed (a lone surrogate, a float, nesting
  // too deep) came from the client: the request is bad, whichever layer found it.
  if (error instanceof CanonicalJsonError) return new MatrixError(400, 'M_BAD_JSON', `Invalid JSON: ${error.message}`);
  if (error instanceof JsonParseError) {
    return error.kind === 'syntax' ? new MatrixError(400, 'M_NOT_JSON', 'Content not JSON.') : new MatrixError(400, 'M_BAD_JSON', error.message);
  }
  // PostgreSQL refuses U+0000 and invalid UTF-8 in text/JSON: that is bad input, not our failure.
  if (e.code === '22021' || e.code === '22P05') {
    return new MatrixError(400, 'M_BAD_JSON', 'Invalid characters in request');
  }
  if (e.validation) {
    // A body that parsed but has the wrong shape: the spec's M_BAD_JSON, or
    // M_INVALID_PARAM/M_MISSING_PARAM for query strings and path parameters.
    const where = e.validationContext ?? 'body';
    const detail = e.message ?? 'invalid request';
    if (where === 'body') return new MatrixError(400, 'M_BAD_JSON', detail);
    const missing = /must have required property/.test(detail);
    return new MatrixError(400, missing ? 'M_MISSING_PARAM' : 'M_INVALID_PARAM', detail);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new MatrixError(e.statusCode, 'M_UNKNOWN', e.message ?? 'Bad request');
  }
  return new MatrixError(500, 'M_UNKNOWN', 'Internal server error');
}
