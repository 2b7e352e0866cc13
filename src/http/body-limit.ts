/**
 * Bodies over a route's limit (fastify's bodyLimit: max_request_body_size,
 * or max_upload_size on the media upload routes) are answered 413
 * M_TOO_LARGE in a way the client can read:
 *
 * - a declared Content-Length over the limit is answered at once, before
 *   authentication and before a byte of the body is read;
 * - whenever a response that closes the connection goes out while the body
 *   is still arriving (that answer, a chunked body found too large while
 *   reading, an upload refused mid-stream), the connection lingers as
 *   nginx's does: once the response is written, what the client still
 *   sends is read and dropped until the body ends, up to LINGER_BYTES or
 *   until it pauses LINGER_IDLE_MS (at most LINGER_MAX_MS in all), and only
 *   then is the connection closed. Closing a socket
 *   with unread bytes makes the kernel send a reset, and a client still
 *   writing then sees EPIPE/ECONNRESET, often before it has read the answer.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { tooLarge } from '../matrix-error.js';

/** How much of a refused body is read and dropped before the connection is closed regardless. */
export const LINGER_BYTES = 64 * 1024 * 1024;
export const LINGER_IDLE_MS = 2_000;
export const LINGER_MAX_MS = 10_000;

export function installBodyLimits(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    const declared = Number(req.headers['content-length']);
    if (declared > req.routeOptions.bodyLimit) {
      void reply.header('connection', 'close');
      throw tooLarge();
    }
  });
  app.addHook('onSend', async (req, reply) => {
    if (!req.raw.complete && closesConnection(reply)) lingerUntilDrained(req.raw);
  });
}

function closesConnection(reply: FastifyReply): boolean {
  const v = reply.getHeader('connection');
  return typeof v === 'string' && v.toLowerCase() === 'close';
}

/** Reads and drops the rest of `req`'s body, then closes; Node's immediate close once the response is written is held off. */
function lingerUntilDrained(req: IncomingMessage): void {
  const socket = req.socket as Socket & { destroySoon?: () => void };
  if ((socket as { lingering?: boolean }).lingering) return;
  (socket as { lingering?: boolean }).lingering = true;
  let responded = false;
  let drained = false;
  let left = LINGER_BYTES;
  const close = () => {
    clearTimeout(idle);
    clearTimeout(total);
    // end() flushes the response before the FIN; destroy follows once it is written.
    if (!socket.writableEnded) socket.end();
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  };
  const idle = setTimeout(close, LINGER_IDLE_MS);
  const total = setTimeout(close, LINGER_MAX_MS);
  idle.unref();
  total.unref();
  req.on('data', (chunk: Buffer | string) => {
    left -= chunk.length;
    if (left <= 0) close();
    else idle.refresh();
  });
  req.on('end', () => {
    drained = true;
    if (responded) close();
  });
  socket.once('close', () => {
    clearTimeout(idle);
    clearTimeout(total);
  });
  // Node calls destroySoon() once a `Connection: close` response is written.
  // Our side stays open meanwhile: a client that has not finished writing
  // would take a FIN as its cue to stop, and Node's own clients then fail the
  // writes still queued.
  socket.destroySoon = () => {
    responded = true;
    if (drained) close();
  };
}
