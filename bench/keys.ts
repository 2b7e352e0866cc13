/**
 * End-to-end keys over HTTP on the real server. Prints figures only.
 * Run: npx tsx bench/keys.ts (AXON_TEST_DB=embedded runs it on PGlite).
 *
 * (a) claims: one device holding 20,000 one-time keys, claimed by 50
 *     concurrent clients (one key per request) until 10,000 are gone;
 *     claims per second, latency, and a check that no key went out twice;
 * (b) uploads: 200 devices each uploading identity keys and 50 signed
 *     one-time keys, 20 at a time; uploads per second;
 * (c) queries: /keys/query for 20 users (2 devices each, cross-signing
 *     keys, a self-signing signature over each device), 20 concurrent
 *     clients; queries per second;
 * and the process's RSS.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), as the
 * integration tests do.
 */
import { performance } from 'node:perf_hooks';
import { crossSigning, deviceKeys, oneTimeKeys, sign, signingUpload } from '../test/helpers/e2e-keys.js';
import { login } from '../test/helpers/sessions.js';
import { startTestServer, type TestServer } from '../test/helpers/server.js';
import { api, createUser, type TestUser } from '../test/helpers/users.js';

process.env.AXON_TEST_DB ??= 'postgres';

const V3 = '/_matrix/client/v3';
const LOOSE = { per_second: 1_000_000, burst_count: 1_000_000 };
type Json = Record<string, any>;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

async function ok(res: Promise<{ status: number; body: Json }>, what: string): Promise<Json> {
  const r = await res;
  if (r.status !== 200) throw new Error(`${what} answered ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  return r.body;
}

/** Runs `total` calls of `fn` from `concurrency` loops; returns per-call times and the wall time. */
async function run(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<{ times: number[]; seconds: number }> {
  let next = 0;
  const times: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) {
        const s = performance.now();
        await fn(i);
        times.push(performance.now() - s);
      }
    }),
  );
  return { times, seconds: (performance.now() - start) / 1000 };
}

function report(label: string, unit: string, r: { times: number[]; seconds: number }): void {
  console.log(`${label}: ${Math.round(r.times.length / r.seconds).toLocaleString('en')} ${unit}/s, median ${ms(percentile(r.times, 50))}, p99 ${ms(percentile(r.times, 99))}`);
}

async function claims(t: TestServer): Promise<void> {
  const KEYS = 20_000;
  const CLAIMS = 10_000;
  const CLIENTS = 50;
  const owner = await createUser(t, 'owner');
  const d = deviceKeys(owner.userId, owner.deviceId);
  await ok(api(t, 'POST', `${V3}/keys/upload`, { token: owner.accessToken, body: { device_keys: d.deviceKeys } }), 'upload');
  for (let i = 0; i < KEYS; i += 1000) {
    await ok(api(t, 'POST', `${V3}/keys/upload`, { token: owner.accessToken, body: { one_time_keys: oneTimeKeys(d, 1000) } }), 'upload');
  }
  const claimers: TestUser[] = [];
  for (let i = 0; i < CLIENTS; i++) claimers.push(await createUser(t, `claimer${i}`));
  const body = { one_time_keys: { [owner.userId]: { [owner.deviceId]: 'signed_curve25519' } } };
  const seen = new Set<string>();
  let missing = 0;
  const r = await run(CLAIMS, CLIENTS, async (i) => {
    const res = await ok(api(t, 'POST', `${V3}/keys/claim`, { token: (claimers[i % CLIENTS] as TestUser).accessToken, body }), 'claim');
    const got = Object.keys(res.one_time_keys?.[owner.userId]?.[owner.deviceId] ?? {});
    if (got.length !== 1) missing++;
    for (const k of got) {
      if (seen.has(k)) throw new Error(`key ${k} handed out twice`);
      seen.add(k);
    }
  });
  report(`(a) claims, ${CLIENTS} concurrent clients, one device with ${KEYS.toLocaleString('en')} keys`, 'claims', r);
  const left = await ok(api(t, 'POST', `${V3}/keys/upload`, { token: owner.accessToken, body: {} }), 'counts');
  console.log(`    ${seen.size.toLocaleString('en')} distinct keys handed out, ${missing} claims without a key, ${left.one_time_key_counts.signed_curve25519} left`);
}

async function uploads(t: TestServer): Promise<void> {
  const DEVICES = 200;
  const users: TestUser[] = [];
  for (let i = 0; i < DEVICES; i++) users.push(await createUser(t, `uploader${i}`));
  const bodies = users.map((u) => {
    const d = deviceKeys(u.userId, u.deviceId);
    return { device_keys: d.deviceKeys, one_time_keys: oneTimeKeys(d, 50), fallback_keys: oneTimeKeys(d, 1, { fallback: true }) };
  });
  const r = await run(DEVICES, 20, async (i) => {
    await ok(api(t, 'POST', `${V3}/keys/upload`, { token: (users[i] as TestUser).accessToken, body: bodies[i] }), 'upload');
  });
  report(`(b) uploads (identity keys + 50 one-time keys + fallback), 20 concurrent`, 'uploads', r);
}

async function queries(t: TestServer): Promise<void> {
  const USERS = 20;
  const QUERIES = 2000;
  const users: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const u = await createUser(t, `queried${i}`);
    const second = await login(t, u.localpart, u.password);
    const devices = [
      { token: u.accessToken, deviceId: u.deviceId },
      { token: second.body.access_token as string, deviceId: second.body.device_id as string },
    ];
    const cs = crossSigning(u.userId);
    await ok(api(t, 'POST', `${V3}/keys/device_signing/upload`, { token: u.accessToken, body: signingUpload(cs) }), 'signing keys');
    for (const dev of devices) {
      const d = deviceKeys(u.userId, dev.deviceId);
      await ok(api(t, 'POST', `${V3}/keys/upload`, { token: dev.token, body: { device_keys: d.deviceKeys } }), 'upload');
      const signed = sign(d.deviceKeys, u.userId, `ed25519:${cs.selfSigning.pub}`, cs.selfSigning);
      await ok(api(t, 'POST', `${V3}/keys/signatures/upload`, { token: u.accessToken, body: { [u.userId]: { [dev.deviceId]: signed } } }), 'signature');
    }
    users.push(u.userId);
  }
  const asker = await createUser(t, 'asker');
  const body = { device_keys: Object.fromEntries(users.map((u) => [u, []])) };
  const r = await run(QUERIES, 20, async () => {
    const res = await ok(api(t, 'POST', `${V3}/keys/query`, { token: asker.accessToken, body }), 'query');
    if (Object.keys(res.master_keys).length !== USERS) throw new Error('query lost master keys');
  });
  report(`(c) queries of ${USERS} users x 2 devices with cross-signing, 20 concurrent`, 'queries', r);
}

async function main(): Promise<void> {
  const t = await startTestServer({ yaml: { rc_message: LOOSE, rc_login: { address: LOOSE, account: LOOSE, failed_attempts: LOOSE } } });
  try {
    await claims(t);
    await uploads(t);
    await queries(t);
    console.log(`RSS ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB`);
  } finally {
    await t.close();
  }
}

await main();
