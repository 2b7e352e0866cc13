/**
 * The notary endpoints (GET /_matrix/key/v2/query/{serverName}, POST
 * /_matrix/key/v2/query) on a real server, with a second real server whose
 * keys it fetches over plain HTTP from that server's own
 * /_matrix/key/v2/server (a test-only transport: real servers, real keys).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../src/core/base64.js';
import { verifyJson } from '../../src/core/signing.js';
import type { KeyFetchTransport } from '../../src/services/federation/key-transport.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let origin: TestServer;
let notary: TestServer;
const urls = new Map<string, string>();
let fetches = 0;

/** Reads a server's key document from its URL, as the federation client will over HTTPS. */
const httpTransport: KeyFetchTransport = {
  async getServerKeys(serverName) {
    const url = urls.get(serverName);
    if (!url) throw new Error(`${serverName} unreachable`);
    fetches++;
    const res = await fetch(`${url}/_matrix/key/v2/server`);
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    return res.json();
  },
  queryNotary: () => Promise.reject(new Error('no notaries in this test')),
};

beforeAll(async () => {
  origin = await startTestServer({ serverName: 'origin.test', yaml: { trusted_key_servers: [] } });
  urls.set('origin.test', origin.url);
  notary = await startTestServer({ serverName: 'notary.test', yaml: { trusted_key_servers: [] }, keyTransport: httpTransport });
});

afterAll(async () => {
  await notary?.close();
  await origin?.close();
});

type KeyDoc = { server_name: string; valid_until_ts: number; verify_keys: Record<string, { key: string }>; signatures: Record<string, Record<string, string>> };

async function ownDocument(t: TestServer): Promise<KeyDoc> {
  return (await (await fetch(`${t.url}/_matrix/key/v2/server`)).json()) as KeyDoc;
}

/** Whether `doc` has a valid signature of `signer` by one of `signerDoc`'s keys. */
function signedBy(doc: object, signer: string, signerDoc: KeyDoc): boolean {
  return Object.entries(signerDoc.verify_keys).some(([keyId, { key }]) => verifyJson(doc, signer, keyId, decodeBase64(key)));
}

async function post(body: unknown, raw?: string) {
  const res = await fetch(`${notary.url}/_matrix/key/v2/query`, { method: 'POST', body: raw ?? JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('notary queries', () => {
  it('answers our own name from our own document, signed by us', async () => {
    const mine = await ownDocument(notary);
    const { status, json } = await post({ server_keys: { 'notary.test': {} } });
    expect(status).toBe(200);
    const docs = json['server_keys'] as KeyDoc[];
    expect(docs).toHaveLength(1);
    expect(docs[0]!.server_name).toBe('notary.test');
    expect(signedBy(docs[0]!, 'notary.test', mine)).toBe(true);
    expect(docs[0]!.verify_keys).toEqual(mine.verify_keys);
    const get = (await (await fetch(`${notary.url}/_matrix/key/v2/query/notary.test`)).json()) as { server_keys: KeyDoc[] };
    expect(get.server_keys.map((d) => d.server_name)).toEqual(['notary.test']);
    expect(signedBy(get.server_keys[0]!, 'notary.test', mine)).toBe(true);
  });

  it("answers another server's keys, fetched from it, signed by it and counter-signed by us", async () => {
    const theirs = await ownDocument(origin);
    const mine = await ownDocument(notary);
    const keyId = Object.keys(theirs.verify_keys)[0]!;
    const { status, json } = await post({ server_keys: { 'origin.test': { [keyId]: { minimum_valid_until_ts: Date.now() } } } });
    expect(status).toBe(200);
    const docs = json['server_keys'] as KeyDoc[];
    expect(docs).toHaveLength(1);
    const doc = docs[0]!;
    expect(doc.server_name).toBe('origin.test');
    expect(doc.verify_keys).toEqual(theirs.verify_keys);
    expect(Object.keys(doc.signatures).sort()).toEqual(['notary.test', 'origin.test']);
    expect(signedBy(doc, 'origin.test', theirs)).toBe(true);
    expect(signedBy(doc, 'notary.test', mine)).toBe(true);
    // A stranger's key (wrong signer) does not verify it.
    expect(signedBy(doc, 'notary.test', theirs)).toBe(false);

    // Stored now: the GET forms answer from the database, without fetching again.
    const before = fetches;
    for (const path of ['/_matrix/key/v2/query/origin.test', `/_matrix/key/v2/query/origin.test/${encodeURIComponent(keyId)}`]) {
      const res = await fetch(`${notary.url}${path}?minimum_valid_until_ts=${Date.now()}`);
      expect(res.status, path).toBe(200);
      const got = (await res.json()) as { server_keys: KeyDoc[] };
      expect(got.server_keys).toHaveLength(1);
      expect(signedBy(got.server_keys[0]!, 'origin.test', theirs), path).toBe(true);
      expect(signedBy(got.server_keys[0]!, 'notary.test', mine), path).toBe(true);
    }
    expect(fetches).toBe(before);
    // The keyring of the notary now verifies the origin's signatures.
    const key = await notary.server.ctx.services.keyring.verifyKey('origin.test', keyId, { minValidUntilTs: Date.now() });
    expect(key).toEqual(decodeBase64(theirs.verify_keys[keyId]!.key));
  });

  it('answers nothing for a server it cannot reach, and nothing for no servers', async () => {
    expect(await post({ server_keys: { 'unreachable.test': {} } })).toEqual({ status: 200, json: { server_keys: [] } });
    expect(await post({ server_keys: {} })).toEqual({ status: 200, json: { server_keys: [] } });
  });

  it('refuses bad requests with the spec errors', async () => {
    expect((await post(undefined, '{not json')).json['errcode']).toBe('M_NOT_JSON');
    expect(await post([])).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    expect(await post({})).toMatchObject({ status: 400, json: { errcode: 'M_MISSING_PARAM' } });
    expect(await post({ server_keys: 5 })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    expect(await post({ server_keys: { 'a.test': { 'ed25519:x': { minimum_valid_until_ts: 'soon' } } } })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    expect(await post({ server_keys: { 'bad name!': {} } })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`s${i}.test`, {}]));
    const tooMany = await post({ server_keys: many });
    expect(tooMany).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    expect(String(tooMany.json['error'])).toContain('100');
    const badTs = await fetch(`${notary.url}/_matrix/key/v2/query/origin.test?minimum_valid_until_ts=tomorrow`);
    expect(badTs.status).toBe(400);
    expect(((await badTs.json()) as { errcode: string }).errcode).toBe('M_INVALID_PARAM');
    const badName = await fetch(`${notary.url}/_matrix/key/v2/query/${encodeURIComponent('bad name!')}`);
    expect(badName.status).toBe(400);
    expect(((await badName.json()) as { errcode: string }).errcode).toBe('M_INVALID_PARAM');
  });
});
