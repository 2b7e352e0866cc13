/**
 * Bodies over the limit, sent as a real client sends them: a socket that
 * keeps writing a large body while the answer comes back. The 413
 * M_TOO_LARGE must be readable in full before any EPIPE/ECONNRESET, for a
 * declared Content-Length over the limit (answered before the body is read,
 * before authentication) and for a chunked body found too large while read.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useServerWith } from '../helpers/rooms.js';

const MiB = 1024 * 1024;
const UPLOAD_LIMIT = 64 * 1024;

// max_request_body_size stays Synapse's 200 × 64 KiB (12.5 MiB): max_upload_size is below it.
const { t, alice } = useServerWith({ yaml: { max_upload_size: UPLOAD_LIMIT } }, 'alice');

interface OversizeResult {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** A socket error (EPIPE, ECONNRESET) while the client was still writing or reading: what must not happen. */
  socketError?: string;
  /** Whether the server closed the connection after the answer. */
  closedByServer: boolean;
}

/**
 * Sends `method path` with a body of `total` bytes (Content-Length, or
 * chunked when `chunked`), as a naive client does: the whole body is written,
 * in 64 KiB pieces as fast as the socket takes them, whatever comes back
 * meanwhile; then the answer is read.
 */
function sendLarge(path: string, total: number, opts: { chunked?: boolean; token?: string; method?: string; start?: string } = {}): Promise<OversizeResult> {
  const { port, hostname } = new URL(t.url);
  return new Promise((resolve) => {
    const socket = connect({ port: Number(port), host: hostname });
    let received = Buffer.alloc(0);
    let written = 0;
    let socketError: string | undefined;
    const head = [
      `${opts.method ?? 'POST'} ${path} HTTP/1.1`,
      `Host: ${hostname}`,
      'Content-Type: application/json',
      ...(opts.token ? [`Authorization: Bearer ${opts.token}`] : []),
      opts.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${total}`,
      '',
      '',
    ].join('\r\n');
    const piece = Buffer.alloc(64 * 1024, 0x20);
    if (opts.start) piece.write(opts.start);

    const answer = (closedByServer: boolean): OversizeResult => {
      const end = received.indexOf('\r\n\r\n');
      const lines = received.subarray(0, Math.max(end, 0)).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const raw = end === -1 ? '' : received.subarray(end + 4, end + 4 + Number(headers['content-length'] ?? 0)).toString('utf8');
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        body = { unparsed: raw };
      }
      return { status: end === -1 ? 0 : Number(lines[0]!.split(' ')[1]), headers, body, socketError, closedByServer };
    };
    let done = false;
    // Once all is written and the whole answer is in: a `Connection: close`
    // answer is left for the server to close, any other is closed by us.
    const maybeFinish = () => {
      if (written < total || done) return;
      const a = answer(false);
      if (a.status === 0 || a.body.unparsed !== undefined) return;
      done = true;
      if (a.headers.connection !== 'close') socket.end();
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      maybeFinish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      socketError ??= err.code ?? err.message;
    });
    let serverEnded = false;
    socket.on('end', () => {
      serverEnded = true;
    });
    socket.on('close', () => resolve(answer(serverEnded)));

    const writeMore = () => {
      while (written < total && !socket.destroyed) {
        const n = Math.min(piece.length, total - written);
        if (written === piece.length) piece.fill(0x20);
        const data = opts.chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece.subarray(0, n), Buffer.from('\r\n')]) : piece.subarray(0, n);
        written += n;
        if (!socket.write(data)) {
          socket.once('drain', writeMore);
          return;
        }
      }
      if (socket.destroyed) return;
      if (opts.chunked) socket.write('0\r\n\r\n');
      maybeFinish();
    };
    socket.write(head);
    writeMore();
  });
}

function expectTooLarge(res: OversizeResult): void {
  expect(res.socketError).toBeUndefined();
  expect(res.status).toBe(413);
  expect(res.body.errcode).toBe('M_TOO_LARGE');
  expect(typeof res.body.error).toBe('string');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

describe('a JSON body over max_request_body_size', () => {
  it('60 MiB declared in Content-Length: 413 M_TOO_LARGE at once, read before any socket error', async () => {
    const res = await sendLarge('/_matrix/client/v3/user/@alice:test.local/filter', 60 * MiB, { token: alice.accessToken });
    expectTooLarge(res);
    expect(res.headers.connection).toBe('close');
    expect(res.closedByServer).toBe(true);
  });

  it('the early answer comes before authentication (no token)', async () => {
    expectTooLarge(await sendLarge('/_matrix/client/v3/createRoom', 60 * MiB));
  });

  it('a chunked body that grows past the limit: 413 M_TOO_LARGE, read before any socket error', async () => {
    const res = await sendLarge('/_matrix/client/v3/user/@alice:test.local/filter', 20 * MiB, { chunked: true, token: alice.accessToken });
    expectTooLarge(res);
    expect(res.closedByServer).toBe(true);
  });

  it('a body just under the limit is still read and judged as JSON', async () => {
    const res = await sendLarge('/_matrix/client/v3/user/@alice:test.local/filter', 2 * MiB, { token: alice.accessToken, start: '{}' });
    expect(res.socketError).toBeUndefined();
    // `{}` and 2 MiB of spaces: read in full, parsed, a filter made.
    expect(res.status).toBe(200);
    expect(typeof res.body.filter_id).toBe('string');
  });
});

describe('a media upload over max_upload_size', () => {
  it('Content-Length over the limit: 413 M_TOO_LARGE before authentication, readable', async () => {
    expectTooLarge(await sendLarge('/_matrix/media/v3/upload', 60 * MiB));
    expectTooLarge(await sendLarge('/_matrix/media/v3/upload', 60 * MiB, { token: alice.accessToken }));
  });

  it('chunked, refused while streaming: 413 M_TOO_LARGE, readable', async () => {
    const res = await sendLarge('/_matrix/media/v3/upload', 30 * MiB, { chunked: true, token: alice.accessToken });
    expectTooLarge(res);
  });

  it('the server still answers on new connections afterwards', async () => {
    const res = await fetch(`${t.url}/_matrix/client/versions`);
    expect(res.status).toBe(200);
  });
});
