/**
 * How the keyring reaches other servers: a server's own key document and a
 * notary's key query. `keyTransportFromClient` adapts the federation HTTP
 * client (anything with its `request` shape) to it.
 */

export interface KeyFetchTransport {
  /** GET /_matrix/key/v2/server on `serverName`: the parsed JSON answer (throws when it cannot be had). */
  getServerKeys(serverName: string): Promise<unknown>;
  /** POST /_matrix/key/v2/query on the notary `notary` with `body`: the parsed JSON answer. */
  queryNotary(notary: string, body: object): Promise<unknown>;
}

/** The part of the federation client the adapter needs. */
export interface FederationRequester {
  request(req: { destination: string; method: 'GET' | 'POST'; path: string; body?: object; signed?: boolean }): Promise<{ status: number; json: unknown }>;
}

/** Thrown for an answer that is not a 200. */
export class KeyTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyTransportError';
  }
}

function ok(destination: string, path: string, res: { status: number; json: unknown }): unknown {
  if (res.status !== 200) throw new KeyTransportError(`${destination} answered ${path} with ${res.status}`);
  return res.json;
}

/** The keyring's transport over the federation client (key requests are not signed: the key APIs take none). */
export function keyTransportFromClient(client: FederationRequester): KeyFetchTransport {
  return {
    async getServerKeys(serverName) {
      const path = '/_matrix/key/v2/server';
      return ok(serverName, path, await client.request({ destination: serverName, method: 'GET', path, signed: false }));
    },
    async queryNotary(notary, body) {
      const path = '/_matrix/key/v2/query';
      return ok(notary, path, await client.request({ destination: notary, method: 'POST', path, body, signed: false }));
    },
  };
}
