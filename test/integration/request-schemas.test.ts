/**
 * Route schemas (src/http/request-schema.ts) on the real app: the order in
 * which a request's problems are answered (token, then body that is not a
 * JSON object, then the schema), the spec's errcodes, no coercion of types,
 * unknown fields left alone, and a handler that forgets to raise a failure.
 * The routes' own schemas are checked route by route below.
 */
import type { FastifyPluginAsync } from 'fastify';
import { describe, expect, it } from 'vitest';
import { requireUser } from '../../src/http/auth.js';
import type { PluginOptions } from '../../src/http/context.js';
import { jsonObjectBody } from '../../src/http/json-body.js';
import { raiseSchemaError } from '../../src/http/request-schema.js';
import { useServerWith } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';
import { rawRequest } from '../helpers/media-http.js';

const received: Record<string, unknown>[] = [];

/** Test routes with schemas, registered through the app's extraPlugins. */
const probePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const body = {
    type: 'object',
    required: ['name'],
    properties: {
      name: { type: 'string' },
      count: { type: 'integer', minimum: 0, errcode: 'M_INVALID_PARAM' },
      flag: { type: 'boolean', errmsg: "'flag' parameter is not of type boolean" },
    },
  };
  app.post('/_test/schema/authed', { schema: { body } }, async (req) => {
    await requireUser(ctx, req);
    received.push(jsonObjectBody(req));
    return {};
  });
  app.post('/_test/schema/open', { schema: { body } }, async (req) => {
    received.push(jsonObjectBody(req));
    return {};
  });
  app.post('/_test/schema/empty-ok', { schema: { body } }, async (req) => {
    received.push(jsonObjectBody(req, 'allowEmpty'));
    return {};
  });
  const querystring = { type: 'object', properties: { dir: { type: 'string', enum: ['b', 'f'] } } };
  app.get('/_test/schema/query', { schema: { querystring } }, async (req) => {
    await requireUser(ctx, req);
    return { dir: (req.query as { dir?: string }).dir ?? null };
  });
  app.get('/_test/schema/query-open', { schema: { querystring } }, async (req) => {
    raiseSchemaError(req);
    return {};
  });
  // A handler that never raises what its schema found: still refused.
  app.post('/_test/schema/forgetful', { schema: { body } }, async () => ({ done: true }));
};

const { t, alice } = useServerWith({ extraPlugins: [probePlugin] }, 'alice');

const post = (path: string, body: unknown, token?: string) => api(t, 'POST', `/_test/schema/${path}`, { token, body });

describe('route schemas: order and errcodes', () => {
  it('passes a valid body through unchanged, unknown fields included', async () => {
    received.length = 0;
    const body = { name: 'x', count: 3, flag: true, extra: { nested: [1, 'two'] } };
    expect((await post('authed', body, alice.accessToken)).status).toBe(200);
    expect(received).toEqual([body]);
  });

  it('answers a missing access token before the schema', async () => {
    const res = await post('authed', { count: 'many' });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_MISSING_TOKEN');
    const bad = await post('authed', { count: 'many' }, 'not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('answers text that is not JSON with M_NOT_JSON and a non-object with M_BAD_JSON, before the schema', async () => {
    const res = await rawRequest(t, 'POST', '/_test/schema/authed', { token: alice.accessToken, body: '{nope', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.json.errcode).toBe('M_NOT_JSON');
    for (const body of [[1, 2], 'name', 7, null]) {
      const r = await post('authed', body, alice.accessToken);
      expect(r.status).toBe(400);
      expect(r.body).toEqual({ errcode: 'M_BAD_JSON', error: 'Content must be a JSON object.' });
    }
  });

  it('answers a missing property with M_MISSING_PARAM naming it', async () => {
    const res = await post('authed', { count: 1 }, alice.accessToken);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_MISSING_PARAM', error: "Missing params: ['name']" });
  });

  it('answers a wrong type with M_BAD_JSON, or the errcode the schema names, and never coerces', async () => {
    received.length = 0;
    const wrongName = await post('authed', { name: 5 }, alice.accessToken);
    expect(wrongName.status).toBe(400);
    expect(wrongName.body.errcode).toBe('M_BAD_JSON');
    expect(wrongName.body.error).toContain('body.name');
    // "true" is not a boolean and "3" not an integer: Ajv's coercion is off.
    // errmsg words the failure as Synapse does.
    expect((await post('authed', { name: 'x', flag: 'true' }, alice.accessToken)).body).toEqual({ errcode: 'M_BAD_JSON', error: "'flag' parameter is not of type boolean" });
    for (const count of ['3', -1, 1.5]) {
      const res = await post('authed', { name: 'x', count }, alice.accessToken);
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_INVALID_PARAM');
    }
    expect(received).toEqual([]);
  });

  it('checks routes without an access token when the handler reads the body', async () => {
    expect((await post('open', {})).body.errcode).toBe('M_MISSING_PARAM');
    expect((await post('open', { name: 'x' })).status).toBe(200);
  });

  it('checks the {} taken for no body against the schema', async () => {
    const res = await api(t, 'POST', '/_test/schema/empty-ok', {});
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_MISSING_PARAM');
  });

  it('answers a bad query string with M_INVALID_PARAM after the access token', async () => {
    expect((await api(t, 'GET', '/_test/schema/query?dir=sideways', {})).body.errcode).toBe('M_MISSING_TOKEN');
    const res = await api(t, 'GET', '/_test/schema/query?dir=sideways', { token: alice.accessToken });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_INVALID_PARAM');
    // A parameter given twice is not one string.
    expect((await api(t, 'GET', '/_test/schema/query?dir=b&dir=f', { token: alice.accessToken })).body.errcode).toBe('M_INVALID_PARAM');
    expect((await api(t, 'GET', '/_test/schema/query?dir=f', { token: alice.accessToken })).body).toEqual({ dir: 'f' });
    expect((await api(t, 'GET', '/_test/schema/query-open?dir=up', {})).body.errcode).toBe('M_INVALID_PARAM');
  });

  it('refuses a request whose handler did not raise its schema failure', async () => {
    const res = await post('forgetful', { count: 1 });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_MISSING_PARAM');
    expect((await post('forgetful', { name: 'x' })).body).toEqual({ done: true });
  });
});

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('PUT /rooms/{roomId}/typing/{userId}', () => {
  it('takes the spec body and refuses each wrong field with Synapse code', async () => {
    const room = (await api(t, 'POST', `${V3}/createRoom`, { token: alice.accessToken, body: {} })).body.room_id as string;
    const path = `${V3}/rooms/${enc(room)}/typing/${enc(alice.userId)}`;
    const put = (body: unknown) => api(t, 'PUT', path, { token: alice.accessToken, body });
    expect((await put({ typing: true, timeout: 1000 })).status).toBe(200);
    expect((await put({ timeout: 1000 })).body.errcode).toBe('M_MISSING_PARAM');
    expect((await put({ typing: 'yes' })).body.errcode).toBe('M_BAD_JSON');
    expect((await put({ typing: true, timeout: -5 })).body.errcode).toBe('M_INVALID_PARAM');
    expect((await put({ typing: true, timeout: 'soon' })).body.errcode).toBe('M_INVALID_PARAM');
    expect((await put({ typing: false })).status).toBe(200);
  });
});
