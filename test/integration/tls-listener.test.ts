/**
 * `tls: true` listeners: HTTPS with Synapse's tls_certificate_path and
 * tls_private_key_path, checked at start, reloaded on SIGHUP
 * (RunningServer.reloadTls), and the federation test harness built on them
 * (test/helpers/federation.ts): servers on fixed ports, named
 * localhost:<port>, with leaves from the test CA.
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import type { FastifyPluginAsync } from 'fastify';
import { Agent, fetch as undiciFetch } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import type { PluginOptions } from '../../src/http/context.js';
import { StartupError } from '../../src/startup-error.js';
import { type FederationServer, startFederationServer, startFederationServers, testCaAgent } from '../helpers/federation.js';
import { freePort } from '../helpers/ports.js';
import { listeningUrl, runMain } from '../helpers/process.js';
import { baseTestYaml, startTestServer, type TestServer } from '../helpers/server.js';
import { issueLeaf, testCa } from '../helpers/test-ca.js';

const TLS_LISTENER = { port: 8448, type: 'http', tls: true, bind_addresses: ['127.0.0.1'], resources: [{ names: ['federation'] }] };

/** The SHA-256 fingerprint of the certificate a new TLS connection to host:port is shown (verified against the test CA). */
function peerFingerprint(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, servername: 'localhost', ca: readFileSync(testCa().certPath, 'utf8') }, () => {
      const fp = socket.getPeerX509Certificate()?.fingerprint256;
      socket.end();
      if (fp) resolve(fp);
      else reject(new Error('no peer certificate'));
    });
    socket.once('error', reject);
  });
}

/** The fingerprint of the first certificate of a PEM chain file. */
function fileFingerprint(chainPath: string): string {
  return new X509Certificate(readFileSync(chainPath)).fingerprint256;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

async function keyServerName(url: string, dispatcher: Agent): Promise<unknown> {
  const res = await undiciFetch(`${url}/_matrix/key/v2/server`, { dispatcher });
  expect(res.status).toBe(200);
  return ((await res.json()) as { server_name: string }).server_name;
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('a tls: true listener', () => {
  let fed: FederationServer;
  const lines: string[] = [];
  const trusting = testCaAgent();
  const plain = new Agent();
  beforeAll(async () => {
    fed = await startFederationServer({ logLines: lines });
  });
  afterAll(async () => {
    await fed?.close();
    await trusting.close();
    await plain.close();
  });

  it('serves the key server over HTTPS to a client that trusts the test CA', async () => {
    expect(fed.test.server.urls).toEqual([`https://127.0.0.1:${fed.port}`]);
    expect(fed.url).toBe(`https://localhost:${fed.port}`);
    expect(await keyServerName(fed.url, trusting)).toBe(fed.serverName);
    const versions = await undiciFetch(`${fed.url}/_matrix/client/versions`, { dispatcher: trusting });
    expect(versions.status).toBe(200);
  });

  it('fails certificate verification for a client that does not trust the CA', async () => {
    const err = await rejection(undiciFetch(`${fed.url}/_matrix/key/v2/server`, { dispatcher: plain }));
    expect((err.cause as NodeJS.ErrnoException | undefined)?.code).toBe('SELF_SIGNED_CERT_IN_CHAIN');
  });

  it('speaks no plain HTTP on that port', async () => {
    const err = await rejection(undiciFetch(`http://127.0.0.1:${fed.port}/_matrix/key/v2/server`, { dispatcher: plain }));
    expect(err).toBeInstanceOf(TypeError);
  });

  it('logs the certificate it loaded at start', () => {
    const loaded = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'loaded the TLS certificate');
    expect(loaded).toMatchObject({ tls_certificate_path: fed.leaf.chainPath, fingerprint256: fileFingerprint(fed.leaf.chainPath), expired: false });
    expect(JSON.stringify(loaded)).not.toContain('PRIVATE KEY');
  });
});

describe('a plain http listener', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is unchanged: http:// URL, plain HTTP, and nothing for reloadTls to do', async () => {
    expect(t.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${t.url}/_matrix/key/v2/server`);
    expect(res.status).toBe(200);
    expect(t.server.reloadTls()).toBe(false);
  });
});

describe('configuration errors', () => {
  it('tls: true without tls_certificate_path is a ConfigError naming the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-tls-config-'));
    try {
      const file = join(dir, 'homeserver.yaml');
      writeFileSync(file, stringify({ server_name: 'example.com', report_stats: false, listeners: [TLS_LISTENER] }));
      let caught: unknown;
      try {
        loadConfig([file], { env: {} });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).key).toBe('tls_certificate_path');
      expect((caught as ConfigError).message).toBe(
        `${file}: tls_certificate_path: required: listeners[0] has tls: true, so set tls_certificate_path to the PEM certificate file (the full chain, as certbot's fullchain.pem)`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** The StartupError startTestServer fails with for these TLS settings. */
  async function startupError(yaml: Record<string, unknown>): Promise<StartupError> {
    const err = await rejection(startTestServer({ yaml: { listeners: [TLS_LISTENER], ...yaml } }));
    expect(err).toBeInstanceOf(StartupError);
    return err as StartupError;
  }

  it('a missing certificate file is a StartupError naming the key and the path', async () => {
    const leaf = issueLeaf();
    const missing = join(testCa().dir, 'no-such-cert.pem');
    const err = await startupError({ tls_certificate_path: missing, tls_private_key_path: leaf.keyPath });
    expect(err.problems).toEqual([`tls_certificate_path: cannot read ${missing} (no such file)`]);
  });

  it('a file that is not a certificate, a file that is not a key, and a key of another certificate are StartupErrors', async () => {
    const leaf = issueLeaf();
    const other = issueLeaf();
    const junk = join(testCa().dir, 'junk.pem');
    writeFileSync(junk, 'not PEM at all\n');
    expect((await startupError({ tls_certificate_path: junk, tls_private_key_path: leaf.keyPath })).message).toBe(
      `tls_certificate_path: ${junk} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`,
    );
    expect((await startupError({ tls_certificate_path: leaf.chainPath, tls_private_key_path: junk })).message).toContain(
      `tls_private_key_path: ${junk} is not a valid PEM private key`,
    );
    expect((await startupError({ tls_certificate_path: leaf.chainPath, tls_private_key_path: other.keyPath })).message).toBe(
      `tls_private_key_path: the key in ${other.keyPath} does not belong to the certificate in ${leaf.chainPath} (the first certificate there must be the server's own)`,
    );
  });
});

describe('reloading the certificate (SIGHUP)', () => {
  let t: TestServer;
  const lines: string[] = [];
  let certPath: string;
  let keyPath: string;
  let hangupBefore: ((...args: unknown[]) => void)[];

  beforeAll(async () => {
    // Copies: the test overwrites these files as certbot would.
    const leaf = issueLeaf();
    const dir = mkdtempSync(join(tmpdir(), 'axon-tls-files-'));
    certPath = join(dir, 'fullchain.pem');
    keyPath = join(dir, 'privkey.pem');
    copyFileSync(leaf.chainPath, certPath);
    copyFileSync(leaf.keyPath, keyPath);
    hangupBefore = process.listeners('SIGHUP') as typeof hangupBefore;
    t = await startTestServer({
      logLines: lines,
      yaml: {
        // Two addresses: the first is fastify's server, the second one of ours; both must change certificate.
        listeners: [{ ...TLS_LISTENER, bind_addresses: ['127.0.0.1', '::1'] }],
        tls_certificate_path: certPath,
        tls_private_key_path: keyPath,
      },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Both addresses' certificates, as new connections see them. */
  async function fingerprints(): Promise<string[]> {
    const [v4, v6] = t.server.urls as [string, string];
    return [await peerFingerprint('127.0.0.1', portOf(v4)), await peerFingerprint('::1', portOf(v6))];
  }

  function logged(): Record<string, unknown>[] {
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  it('serves HTTPS on every bind address', async () => {
    expect(t.server.urls).toEqual([expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/), expect.stringMatching(/^https:\/\/\[::1\]:\d+$/)]);
    const first = fileFingerprint(certPath);
    expect(await fingerprints()).toEqual([first, first]);
  });

  it('gives new connections the renewed certificate after reloadTls()', async () => {
    const old = fileFingerprint(certPath);
    const renewed = issueLeaf();
    copyFileSync(renewed.chainPath, certPath);
    copyFileSync(renewed.keyPath, keyPath);
    const next = fileFingerprint(certPath);
    expect(next).not.toBe(old);
    expect(t.server.reloadTls()).toBe(true);
    expect(await fingerprints()).toEqual([next, next]);
    expect(
      logged()
        .filter((l) => l['msg'] === 'reloaded the TLS certificate')
        .at(-1),
    ).toMatchObject({ fingerprint256: next, level: 30 });
  });

  it('keeps the old certificate and logs an error when the new key does not load', async () => {
    const current = fileFingerprint(certPath);
    const goodKey = readFileSync(keyPath);
    writeFileSync(keyPath, '-----BEGIN PRIVATE KEY-----\ntruncated\n');
    try {
      expect(t.server.reloadTls()).toBe(false);
      const error = logged().at(-1)!;
      expect(error['level']).toBe(50);
      expect(error['msg']).toContain(`TLS certificate not reloaded, the previous one stays in use: tls_private_key_path: ${keyPath} is not a valid PEM private key`);
      // A renewal half written: a new certificate whose key is not there yet.
      copyFileSync(issueLeaf().chainPath, certPath);
      writeFileSync(keyPath, goodKey);
      expect(t.server.reloadTls()).toBe(false);
      expect(logged().at(-1)!['msg']).toContain('does not belong to the certificate');
      expect(await fingerprints()).toEqual([current, current]);
      const res = await undiciFetch(`https://localhost:${portOf(t.server.urls[0]!)}/_matrix/key/v2/server`, { dispatcher: testCaAgent() });
      expect(res.status).toBe(200);
    } finally {
      writeFileSync(keyPath, goodKey);
    }
  });

  it('SIGHUP runs the reload through a handler the server installs, and close() removes it', async () => {
    const added = (process.listeners('SIGHUP') as typeof hangupBefore).filter((l) => !hangupBefore.includes(l));
    expect(added).toHaveLength(1);
    const renewed = issueLeaf();
    copyFileSync(renewed.chainPath, certPath);
    copyFileSync(renewed.keyPath, keyPath);
    // Called directly: a real signal would reach the whole test worker.
    added[0]!('SIGHUP');
    const next = fileFingerprint(certPath);
    expect(await fingerprints()).toEqual([next, next]);
    await t.server.close();
    expect(process.listeners('SIGHUP')).not.toContain(added[0]);
  });
});

describe('SIGHUP to the running process', () => {
  it('reloads the certificate in `node dist/src/main.js` and keeps serving; SIGTERM still shuts down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-tls-process-'));
    const base = await baseTestYaml(dir, 'localhost');
    try {
      const leaf = issueLeaf();
      const certPath = join(dir, 'fullchain.pem');
      const keyPath = join(dir, 'privkey.pem');
      copyFileSync(leaf.chainPath, certPath);
      copyFileSync(leaf.keyPath, keyPath);
      const port = await freePort();
      // No log_config: the logger installs no SIGHUP handler, so only the server's keeps the signal from ending the process.
      const yaml = {
        ...base.yaml,
        listeners: [{ ...TLS_LISTENER, port }],
        tls_certificate_path: certPath,
        tls_private_key_path: keyPath,
        trusted_key_servers: [],
        pid_file: join(dir, 'homeserver.pid'),
      };
      writeFileSync(join(dir, 'homeserver.yaml'), stringify(yaml));
      const child = runMain(['-c', join(dir, 'homeserver.yaml')], { cwd: dir, env: { DATABASE_URL: '' } });
      try {
        expect(await listeningUrl(child)).toBe(`https://127.0.0.1:${port}`);
        expect(await peerFingerprint('127.0.0.1', port)).toBe(fileFingerprint(certPath));
        const renewed = issueLeaf();
        copyFileSync(renewed.chainPath, certPath);
        copyFileSync(renewed.keyPath, keyPath);
        child.proc.kill('SIGHUP');
        await child.waitFor(/reloaded the TLS certificate/);
        expect(await peerFingerprint('127.0.0.1', port)).toBe(fileFingerprint(certPath));
        child.proc.kill('SIGTERM');
        expect(await child.exited).toBe(0);
      } finally {
        child.proc.kill('SIGKILL');
      }
    } finally {
      await base.dropDb?.();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A test-only route: the server fetches another server's key with the CAs of its federation_custom_ca_list. */
const fetchKeyProbe: FastifyPluginAsync<PluginOptions> = async (app, opts) => {
  const cas = (opts.ctx.config.raw['federation_custom_ca_list'] as string[]).map((p) => readFileSync(p, 'utf8'));
  const agent = new Agent({ connect: { ca: cas } });
  app.addHook('onClose', async () => agent.close());
  app.get<{ Querystring: { server: string } }>('/_test/fetch-key', async (req) => {
    const res = await undiciFetch(`https://${req.query.server}/_matrix/key/v2/server`, { dispatcher: agent });
    return { status: res.status, body: await res.json() };
  });
};

describe('startFederationServers', () => {
  let servers: FederationServer[];
  const agent = testCaAgent();
  beforeAll(async () => {
    servers = await startFederationServers(2, { extraPlugins: [fetchKeyProbe] });
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.close()));
    await agent.close();
  });

  it('starts servers on distinct fixed ports, named localhost:<port>, trusting no key servers', () => {
    const [a, b] = servers as [FederationServer, FederationServer];
    expect(a.port).not.toBe(b.port);
    for (const s of [a, b]) {
      expect(s.serverName).toBe(`localhost:${s.port}`);
      expect(s.test.config.server_name).toBe(s.serverName);
      expect(s.test.config.trusted_key_servers).toEqual([]);
      expect(s.test.config.raw['federation_custom_ca_list']).toEqual([testCa().certPath]);
    }
  });

  it('lets each server fetch the other’s /_matrix/key/v2/server over HTTPS, trusting the test CA', async () => {
    const [a, b] = servers as [FederationServer, FederationServer];
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const res = await undiciFetch(`${from.url}/_test/fetch-key?server=${encodeURIComponent(to.serverName)}`, { dispatcher: agent });
      expect(res.status).toBe(200);
      const got = (await res.json()) as { status: number; body: { server_name: string; verify_keys: Record<string, unknown> } };
      expect(got.status).toBe(200);
      expect(got.body.server_name).toBe(to.serverName);
      expect(Object.keys(got.body.verify_keys)).toHaveLength(1);
    }
  });
});
