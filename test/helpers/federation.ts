/**
 * Homeservers that can federate with each other in one test: each has a
 * fixed free port, server_name `localhost:<port>` (so no .well-known or SRV
 * lookup is needed to find it), one HTTPS listener on 127.0.0.1 serving the
 * client and federation APIs with a leaf certificate from the test CA, and
 * trusts that CA for its own outbound requests (federation_custom_ca_list).
 * No trusted key servers: nothing leaves the machine.
 */
import { request, type Agent } from 'undici';
import { xMatrixAuthorization } from '../../src/core/x-matrix.js';
import { freePort } from './ports.js';
import { startTestServer, type TestServer, type TestServerOptions } from './server.js';
import { issueLeaf, testCa, type TestLeaf } from './test-ca.js';

export { testCaAgent } from './test-ca.js';
import { testCaAgent } from './test-ca.js';
import { api, createUser, type TestUser } from './users.js';

/**
 * A federation request from `from` to `to`, signed with `from`'s key as
 * `from` would sign it (X-Matrix), through `agent` (testCaAgent()); the
 * answer's status and JSON body.
 */
export async function signedFederationRequest(
  agent: Agent,
  from: FederationServer,
  to: FederationServer,
  method: 'GET' | 'PUT' | 'POST',
  uri: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, any> }> {
  const auth = xMatrixAuthorization({ method, uri, origin: from.serverName, destination: to.serverName, content: body }, from.test.server.ctx.keys.current);
  const res = await request(`${to.url}${uri}`, {
    method,
    dispatcher: agent,
    headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
}

export interface FederationServer {
  /** `https://localhost:<port>`. */
  url: string;
  /** `localhost:<port>`. */
  serverName: string;
  port: number;
  /** The certificate files the listener was started with (overwrite them and call reloadTls() to renew). */
  leaf: TestLeaf;
  test: TestServer;
  close(): Promise<void>;
}

export type FederationServerOptions = Omit<TestServerOptions, 'serverName' | 'keepPorts'>;

/** Another process may take the port between freePort() and listen(); then try a new one. */
const ATTEMPTS = 5;

export async function startFederationServer(opts: FederationServerOptions = {}): Promise<FederationServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const serverName = `localhost:${port}`;
    const leaf = issueLeaf();
    try {
      const test = await startTestServer({
        ...opts,
        serverName,
        keepPorts: true,
        yaml: {
          public_baseurl: `https://${serverName}/`,
          listeners: [{ port, type: 'http', tls: true, bind_addresses: ['127.0.0.1'], x_forwarded: false, resources: [{ names: ['client', 'federation'], compress: false }] }],
          tls_certificate_path: leaf.chainPath,
          tls_private_key_path: leaf.keyPath,
          federation_custom_ca_list: [testCa().certPath],
          trusted_key_servers: [],
          // The servers reach each other on the loopback, which the default ip_range_blacklist refuses.
          ip_range_whitelist: ['127.0.0.1', '::1'],
          ...opts.yaml,
        },
      });
      return { url: `https://${serverName}`, serverName, port, leaf, test, close: () => test.close() };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= ATTEMPTS) throw err;
    }
  }
}

/** `n` servers, started one after another (so their ports differ); all are closed if one fails to start. */
export async function startFederationServers(n: number, opts: FederationServerOptions = {}): Promise<FederationServer[]> {
  const started: FederationServer[] = [];
  try {
    for (let i = 0; i < n; i++) started.push(await startFederationServer(opts));
  } catch (err) {
    await Promise.all(started.map((s) => s.close()));
    throw err;
  }
  return started;
}

export interface FederationPair {
  a: FederationServer;
  b: FederationServer;
  /** `@alice` on A and `@bob` on B. */
  alice: TestUser;
  bob: TestUser;
  /** Trusts the test CA: for requests the tests sign themselves. */
  agent: Agent;
  close(): Promise<void>;
}

/** The two-server set-up most federation tests share: A and B, alice on A, bob on B, and a test-CA agent. */
export async function startFederationPair(opts: FederationServerOptions = {}): Promise<FederationPair> {
  const [a, b] = (await startFederationServers(2, opts)) as [FederationServer, FederationServer];
  const agent = testCaAgent();
  const close = async () => {
    await agent.close();
    await Promise.all([a.close(), b.close()]);
  };
  try {
    return { a, b, alice: await createUser(a.test, 'alice'), bob: await createUser(b.test, 'bob'), agent, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** /createRoom on `t` as `user`; the new room's id. */
export async function createRoomOn(t: FederationServer, user: TestUser, body: Record<string, unknown>): Promise<string> {
  const res = await api(t.test, 'POST', '/_matrix/client/v3/createRoom', { token: user.accessToken, body });
  if (res.status !== 200) throw new Error(`createRoom on ${t.serverName}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.room_id as string;
}

/** The room's members on `t` as `user` sees them: user id → membership. */
export async function membersOn(t: FederationServer, user: TestUser, roomId: string): Promise<Record<string, string>> {
  const res = await api(t.test, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/members`, { token: user.accessToken });
  if (res.status !== 200) throw new Error(`members on ${t.serverName}: ${res.status}`);
  const out: Record<string, string> = {};
  for (const e of res.body.chunk as { state_key: string; content: { membership: string } }[]) out[e.state_key] = e.content.membership;
  return out;
}
