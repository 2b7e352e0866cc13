/**
 * One access-log line per request, written when it completes, under the
 * listener's access logger (`synapse.access.http.<port>` in a log config),
 * rather than fastify's two lines: on a 1 vCPU server every log line is
 * paid for. With a log_config the line has Synapse's shape (synapse/http/site.py):
 *
 *   <ip> - <port> - {<user id or None>} Processed request: <sec>sec/<send sec>sec
 *   (<ru_utime>sec, <ru_stime>sec) (<db sched>sec/<db txn>sec/<db txns>) <bytes>B <status>
 *   "<METHOD> <redacted uri> <protocol>" "<user agent>" [<n> dbevts]
 *
 * Axon does not measure per-request CPU or database time: those print 0,
 * and the processing time includes sending. Without a log_config it is a
 * structured pino record (method, scrubbed URL, client address, status, time).
 * Either way /health and OPTIONS are at DEBUG, as in Synapse.
 */
import { LogController } from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { scrubUrl } from '../logger.js';

const REQUESTER = Symbol('axon.requester');

/** Records who made the request, for the access log (`{@alice:example.org}`). */
export function noteRequester(req: FastifyRequest, userId: string): void {
  (req as unknown as Record<symbol, string>)[REQUESTER] = userId;
}

function requesterOf(req: FastifyRequest): string {
  return (req as unknown as Record<symbol, string | undefined>)[REQUESTER] ?? 'None';
}

export interface AccessLog {
  logger: Logger;
  /** Synapse's site tag: the listener's port. */
  tag: string;
  /** Synapse's text line (a log config is in use) rather than a structured record. */
  synapseLine: boolean;
}

function quiet(request: FastifyRequest): boolean {
  return request.method === 'OPTIONS' || request.url === '/health';
}

/** Synapse's "Processed request" line for a completed request. */
export function synapseAccessLine(tag: string, request: FastifyRequest, reply: FastifyReply): string {
  const sec = (reply.elapsedTime / 1000).toFixed(3);
  const length = Number(reply.getHeader('content-length'));
  const bytes = Number.isFinite(length) ? length : 0;
  const code = `${reply.statusCode}${reply.raw.writableFinished ? '' : '!'}`;
  const ua = request.headers['user-agent'] ?? '-';
  return (
    `${request.ip} - ${tag} - {${requesterOf(request)}} Processed request: ${sec}sec/0.000sec (0.000sec, 0.000sec) (0.000sec/0.000sec/0)` +
    ` ${bytes}B ${code} "${request.method} ${scrubUrl(request.url)} HTTP/${request.raw.httpVersion}" "${ua}" [0 dbevts]`
  );
}

export class RequestLogController extends LogController {
  constructor(private readonly access?: AccessLog) {
    super({ requestIdLogLabel: 'request' });
  }

  override incomingRequest(request: FastifyRequest): void {
    const log = this.access?.logger;
    if (log?.isLevelEnabled('debug') && this.access?.synapseLine) {
      log.debug({ request: request.id }, `${request.ip} - ${this.access.tag} - Received request: ${request.method} ${scrubUrl(request.url)}`);
    }
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const log = this.access?.logger ?? (request.log as unknown as Logger);
    const level = quiet(request) ? 'debug' : 'info';
    if (!log.isLevelEnabled(level)) return;
    if (this.access?.synapseLine) {
      log[level]({ request: request.id }, synapseAccessLine(this.access.tag, request, reply));
      return;
    }
    log[level](
      {
        request: request.id,
        req: request,
        res: reply,
        responseTime: Math.round(reply.elapsedTime * 10) / 10,
        ...(error ? { err: error } : {}),
      },
      'request completed',
    );
  }
}
