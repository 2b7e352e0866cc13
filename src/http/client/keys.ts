/**
 * End-to-end keys, under r0 and v3: POST /keys/upload, /keys/query,
 * /keys/claim, GET /keys/changes, and cross-signing: POST
 * /keys/device_signing/upload (UIA to replace keys) and
 * /keys/signatures/upload. The rules are in services/e2ee.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { parseSigningKeys } from '../../services/e2ee/cross-signing.js';
import { KeysService, parseClaim, parseQuery, parseUpload } from '../../services/e2ee/keys.js';
import { decodeStreamToken } from '../../services/streams/stream-token.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, pathOf } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/**
 * The top level of the spec's /keys bodies (the service checks what is
 * inside): objects where the spec has them, null taken as not given on
 * upload, `timeout` an integer (how long to wait for other servers, in
 * ms: 10 s when absent, as Synapse, and at most a minute). Wrong types are M_BAD_JSON, a missing map M_MISSING_PARAM.
 */
/** A body's `timeout` for the federation requests, capped. */
const remoteTimeout = (body: Record<string, unknown>) => (typeof body['timeout'] === 'number' ? Math.min(body['timeout'], 60_000) : undefined);

const KEY_MAP = { type: 'object', nullable: true };
const UPLOAD_BODY = {
  type: 'object',
  properties: { device_keys: KEY_MAP, one_time_keys: KEY_MAP, fallback_keys: KEY_MAP, 'org.matrix.msc2732.fallback_keys': KEY_MAP },
};
const TIMEOUT = { type: 'integer', nullable: true };
const QUERY_BODY = { type: 'object', required: ['device_keys'], properties: { device_keys: { type: 'object' }, timeout: TIMEOUT } };
const CLAIM_BODY = { type: 'object', required: ['one_time_keys'], properties: { one_time_keys: { type: 'object' }, timeout: TIMEOUT } };

function queryParam(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new MatrixError(400, 'M_INVALID_PARAM', `Query parameter '${name}' must be given once`);
  return v;
}

export const keysPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { deviceKeys: keys, crossSigning, deviceLists } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.post(`${prefix}/keys/upload`, { schema: { body: UPLOAD_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const deviceId = KeysService.deviceOf(requester);
      const upload = parseUpload(jsonObjectBody(req), requester, deviceId);
      return { one_time_key_counts: await keys.upload(requester, upload) };
    });

    app.post(`${prefix}/keys/query`, { schema: { body: QUERY_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const body = jsonObjectBody(req);
      return keys.query(requester, parseQuery(body), remoteTimeout(body));
    });

    app.post(`${prefix}/keys/claim`, { schema: { body: CLAIM_BODY } }, async (req) => {
      await requireUser(ctx, req, { allowGuest: true });
      const body = jsonObjectBody(req);
      return keys.claim(parseClaim(body), remoteTimeout(body));
    });

    app.get(`${prefix}/keys/changes`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const fromParam = queryParam(req, 'from');
      if (fromParam === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', "Missing string query parameter 'from'");
      const toParam = queryParam(req, 'to');
      const from = decodeStreamToken(fromParam);
      return deviceLists.changesBetween(requester.userId, from, toParam === undefined ? undefined : decodeStreamToken(toParam));
    });

    app.post(`${prefix}/keys/device_signing/upload`, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req);
      const upload = parseSigningKeys(body, requester.userId);
      await crossSigning.uploadKeys(requester, upload, { uri: pathOf(req), method: req.method, body });
      return {};
    });

    app.post(`${prefix}/keys/signatures/upload`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      return { failures: await crossSigning.uploadSignatures(requester, jsonObjectBody(req)) };
    });
  }
};
