/**
 * A recording fake of another homeserver for the federation sender's tests:
 * an HTTPS server (leaf certificate from the test CA) on 127.0.0.1 with
 * the name `localhost:<port>`, recording every
 * `PUT /_matrix/federation/v1/send/{txnId}` and answering as `mode` says:
 * `ok` (200 with an empty `pdus` result), `fail` (500 M_UNKNOWN) or `hold`
 * (the request waits until `release()`, then is answered as the mode
 * then says). It also counts the requests in flight at once.
 *
 * It serves its key document (`GET /_matrix/key/v2/server`, signed with
 * `key`), so an Axon can check what it signs; every other request is
 * recorded in `requests` and answered by `onRequest` when set (a 404
 * otherwise): the tests of fetching from a remote (get_missing_events,
 * /state, /event) script it there.
 *
 * `joinRemoteUser` puts one of its users into a room of an Axon: a join
 * event built on the room's current state, signed with the fake's own key
 * and persisted through the Axon's persister as a received event (the
 * persister checks the auth rules, not signatures).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hashAndSignEvent } from '../../src/core/event-signing.js';
import type { PDU } from '../../src/core/pdu.js';
import { requireRoomVersion } from '../../src/core/room-versions.js';
import { encodeBase64 } from '../../src/core/base64.js';
import { generateSigningKey, signJsonWithKey, type SigningKey } from '../../src/core/signing.js';
import type { PersistedEvent } from '../../src/services/rooms/event-persister.js';
import { freePort } from './ports.js';
import type { TestServer } from './server.js';
import { issueLeaf } from './test-ca.js';

export interface RecordedSend {
  txnId: string;
  authorization: string | undefined;
  body: { origin: string; origin_server_ts: number; pdus: Record<string, unknown>[]; edus: { edu_type: string; content: Record<string, unknown> }[] };
  /** What the fake answered. */
  status: number;
}

export type RemoteMode = 'ok' | 'fail' | 'hold';

/** A request other than /send and the key document, as received. */
export interface RecordedRequest {
  method: string;
  /** The path without the query, percent-decoded. */
  path: string;
  query: URLSearchParams;
  /** The JSON body, if any. */
  body: unknown;
}

/** What `onRequest` answers: a status and JSON body, or `hang` (never answered until close()). */
export type ScriptedAnswer = { status: number; body: unknown } | 'hang';

export interface FakeRemote {
  serverName: string;
  port: number;
  key: SigningKey;
  mode: RemoteMode;
  /** Every /send received, in arrival order (answered or not). */
  sends: RecordedSend[];
  /** The most /send requests in flight at once so far. */
  maxInFlight: number;
  /** How many are in flight now. */
  inFlight(): number;
  /** Answers the held requests (with the mode in force then; `hold` is answered as `ok`). */
  release(): void;
  /** The PDUs the remote answered 200 for, in order. */
  accepted(): Record<string, unknown>[];
  /** Every other request (not /send, not the key document), in arrival order. */
  requests: RecordedRequest[];
  /** Answers those requests (404 M_UNRECOGNIZED when unset or when it returns undefined). */
  onRequest?: (req: RecordedRequest) => ScriptedAnswer | undefined | Promise<ScriptedAnswer | undefined>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startFakeRemote(): Promise<FakeRemote> {
  const leaf = issueLeaf();
  const port = await freePort();
  let inFlight = 0;
  let held: (() => void)[] = [];
  const hung: (() => void)[] = [];
  const remote: FakeRemote = {
    serverName: `localhost:${port}`,
    port,
    key: generateSigningKey(),
    mode: 'ok',
    sends: [],
    maxInFlight: 0,
    inFlight: () => inFlight,
    release: () => {
      const h = held;
      held = [];
      for (const f of h) f();
    },
    accepted: () => remote.sends.filter((s) => s.status === 200).flatMap((s) => s.body.pdus),
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        remote.release();
        for (const f of hung.splice(0)) f();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const answer = (res: ServerResponse, rec: RecordedSend) => {
    const fail = remote.mode === 'fail';
    rec.status = fail ? 500 : 200;
    res.writeHead(rec.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(fail ? { errcode: 'M_UNKNOWN', error: 'down for the test' } : { pdus: {} }));
  };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const other = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://fake');
    const text = await readBody(req);
    if (req.method === 'GET' && (url.pathname === '/_matrix/key/v2/server' || url.pathname.startsWith('/_matrix/key/v2/server/'))) {
      const doc = {
        server_name: remote.serverName,
        verify_keys: { [remote.key.keyId]: { key: encodeBase64(remote.key.publicKey) } },
        old_verify_keys: {},
        valid_until_ts: Date.now() + 24 * 3600 * 1000,
      };
      json(res, 200, signJsonWithKey(doc, remote.serverName, remote.key));
      return;
    }
    const rec: RecordedRequest = { method: req.method ?? 'GET', path: decodeURIComponent(url.pathname), query: url.searchParams, body: text ? JSON.parse(text) : undefined };
    remote.requests.push(rec);
    const answer = await remote.onRequest?.(rec);
    if (answer === 'hang') {
      // Answered never: close() ends the connection.
      await new Promise<void>((r) => hung.push(r));
      res.destroy();
      return;
    }
    if (answer === undefined) return json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
    json(res, answer.status, answer.body);
  };
  const server: Server = createServer({ cert: readFileSync(leaf.chainPath), key: readFileSync(leaf.keyPath) }, (req, res) => {
    void (async () => {
      const m = /^\/_matrix\/federation\/v1\/send\/([^/?]+)$/.exec(req.url ?? '');
      if (req.method !== 'PUT' || !m) {
        await other(req, res);
        return;
      }
      const rec: RecordedSend = { txnId: decodeURIComponent(m[1]!), authorization: req.headers.authorization, body: JSON.parse(await readBody(req)), status: 0 };
      remote.sends.push(rec);
      inFlight++;
      remote.maxInFlight = Math.max(remote.maxInFlight, inFlight);
      try {
        if (remote.mode === 'hold') await new Promise<void>((r) => held.push(r));
        answer(res, rec);
      } finally {
        inFlight--;
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return remote;
}

/** Persists a join of `userId` (a user of `remote`) into an Axon room, as if received over federation. */
export async function joinRemoteUser(t: TestServer, remote: FakeRemote, roomId: string, userId: string): Promise<PersistedEvent> {
  const pipeline = t.server.ctx.services.rooms.pipeline;
  const persisted = await pipeline.roomTransaction(roomId, async (tx) => {
    const room = await pipeline.room(tx, roomId);
    const rv = requireRoomVersion(room.room_version);
    const { pdu } = await pipeline.builder.build(tx, room, rv, userId, { type: 'm.room.member', state_key: userId, content: { membership: 'join' } }, Date.now());
    const { signatures: _s, hashes: _h, ...bare } = pdu;
    const signed = hashAndSignEvent(bare, rv.id, remote.serverName, remote.key) as PDU;
    return pipeline.persister.persist(tx, room, signed);
  });
  if (persisted.rejected !== undefined || persisted.softFailed) throw new Error(`the remote join was not accepted: ${persisted.rejected ?? 'soft-failed'}`);
  return persisted;
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
