/**
 * Request bodies on the Matrix APIs are JSON whatever Content-Type says: the
 * guides' `curl -d '{...}'` sends application/x-www-form-urlencoded, and
 * Synapse parses it as JSON all the same. An empty body is no body.
 */
import type { FastifyInstance } from 'fastify';
import { notJson } from '../matrix-error.js';

export function installJsonBodyParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      done(notJson('Content not JSON.'), undefined);
    }
  });
}
