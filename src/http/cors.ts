/**
 * CORS as Synapse sends it, so Element Web on another origin can call us:
 * on every /_matrix, /_synapse and /.well-known/matrix response, and an
 * answer to every preflight OPTIONS there, route or no route.
 */
import type { FastifyInstance } from 'fastify';

const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Authorization, Date',
  'access-control-expose-headers': 'Synapse-Trace-Id, Server, ETag',
} as const;

const CORS_PREFIXES = ['/_matrix/', '/_synapse/', '/.well-known/matrix/'];

function wantsCors(url: string): boolean {
  return CORS_PREFIXES.some((p) => url.startsWith(p));
}

export function installCors(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    if (!wantsCors(req.url)) return;
    void reply.headers(CORS_HEADERS);
    if (req.method === 'OPTIONS') {
      await reply.code(200).type('application/json').send('{}');
    }
  });
}
