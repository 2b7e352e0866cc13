/**
 * keyTransportFromClient: the requests it makes of a federation client (any
 * object with the client's `request` shape) and how it takes the answers.
 */
import { describe, expect, it } from 'vitest';
import { type FederationRequester, KeyTransportError, keyTransportFromClient } from '../../src/services/federation/key-transport.js';

function recordingClient(status: number, json: unknown): FederationRequester & { seen: unknown[] } {
  const seen: unknown[] = [];
  return {
    seen,
    async request(req) {
      seen.push(req);
      return { status, json };
    },
  };
}

describe('keyTransportFromClient', () => {
  it('GETs /_matrix/key/v2/server and POSTs /_matrix/key/v2/query, unsigned', async () => {
    const client = recordingClient(200, { ok: 1 });
    const t = keyTransportFromClient(client);
    expect(await t.getServerKeys('a.test')).toEqual({ ok: 1 });
    const body = { server_keys: { 'a.test': {} } };
    expect(await t.queryNotary('n.test', body)).toEqual({ ok: 1 });
    expect(client.seen).toEqual([
      { destination: 'a.test', method: 'GET', path: '/_matrix/key/v2/server', signed: false },
      { destination: 'n.test', method: 'POST', path: '/_matrix/key/v2/query', body, signed: false },
    ]);
  });

  it('turns an answer other than 200 into an error', async () => {
    const t = keyTransportFromClient(recordingClient(404, { errcode: 'M_UNRECOGNIZED' }));
    await expect(t.getServerKeys('a.test')).rejects.toThrow(KeyTransportError);
    await expect(t.queryNotary('n.test', {})).rejects.toThrow(/404/);
  });
});
