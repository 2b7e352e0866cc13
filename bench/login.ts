/**
 * Password login throughput, on the real server over HTTP, with PostgreSQL
 * and Synapse's default `bcrypt_rounds: 12` (rate limits loosened so they do
 * not get in the way). Prints figures only. Run: npx tsx bench/login.ts
 *
 * - one bcrypt verification at 12 and at 10 rounds, on its own;
 * - logins per second, one client after another, then 8 clients at once;
 * - how long a cheap request (whoami) waits while those 8 logins run, since
 *   bcrypt hashing shares the process with every other request;
 * - the process's RSS (server, database pool and this script together).
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), as the
 * integration tests do; AXON_TEST_DB=embedded runs it on PGlite instead.
 */
import { passwordHasher } from '../src/services/passwords.js';
import { startTestServer, type TestServer } from '../test/helpers/server.js';
import { api, createUser } from '../test/helpers/users.js';

process.env.AXON_TEST_DB ??= 'postgres';

const SEQUENTIAL = 20;
const CONCURRENCY = 8;
const CONCURRENT_TOTAL = 48;
const LOOSE = { per_second: 100_000, burst_count: 100_000 };

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const ms = (n: number) => `${n.toFixed(1)} ms`;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function timeVerify(rounds: number, n: number): Promise<number> {
  const hasher = passwordHasher(rounds, '');
  const hash = await hasher.hash('correct horse battery staple');
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    if (!(await hasher.verify('correct horse battery staple', hash))) throw new Error('verify failed');
  }
  return (performance.now() - start) / n;
}

async function loginOnce(t: TestServer, user: string, password: string): Promise<number> {
  const start = performance.now();
  const res = await api(t, 'POST', '/_matrix/client/v3/login', {
    body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password },
  });
  if (res.status !== 200) throw new Error(`login answered ${res.status} ${JSON.stringify(res.body)}`);
  return performance.now() - start;
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);

  const verify12 = await timeVerify(12, 5);
  const verify10 = await timeVerify(10, 10);
  console.log(`bcrypt verify, 12 rounds: ${ms(verify12)} (${(1000 / verify12).toFixed(1)}/s on one core)`);
  console.log(`bcrypt verify, 10 rounds: ${ms(verify10)} (${(1000 / verify10).toFixed(1)}/s on one core)`);

  const t = await startTestServer({
    yaml: { bcrypt_rounds: 12, rc_login: { address: LOOSE, account: LOOSE, failed_attempts: LOOSE } },
  });
  try {
    const kind = t.server.ctx.database.kind;
    console.log(`server on ${kind === 'embedded' ? 'embedded PostgreSQL (PGlite)' : 'PostgreSQL'}, bcrypt_rounds ${t.config.bcrypt_rounds}`);
    console.log(`RSS after start: ${mib(process.memoryUsage().rss)}`);

    const users = [];
    for (let i = 0; i < CONCURRENCY; i++) users.push(await createUser(t, `bench${i}`, { password: `bench password ${i}` }));
    const first = users[0];
    if (!first) throw new Error('no users');
    for (let i = 0; i < 2; i++) await loginOnce(t, first.localpart, first.password); // warm-up

    const seq: number[] = [];
    const seqStart = performance.now();
    for (let i = 0; i < SEQUENTIAL; i++) seq.push(await loginOnce(t, first.localpart, first.password));
    const seqElapsed = performance.now() - seqStart;
    console.log(
      `sequential: ${SEQUENTIAL} logins in ${ms(seqElapsed)} = ${((SEQUENTIAL * 1000) / seqElapsed).toFixed(2)} logins/s; ` +
        `latency p50 ${ms(percentile(seq, 50))}, p95 ${ms(percentile(seq, 95))}`,
    );

    // 8 clients, each logging in again and again, while a ninth asks whoami in a loop.
    const conc: number[] = [];
    const whoami: number[] = [];
    let done = false;
    let next = 0;
    const probe = (async () => {
      while (!done) {
        const start = performance.now();
        const res = await api(t, 'GET', '/_matrix/client/v3/account/whoami', { token: first.accessToken });
        if (res.status !== 200) throw new Error(`whoami answered ${res.status}`);
        whoami.push(performance.now() - start);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const concStart = performance.now();
    await Promise.all(
      users.map(async (u) => {
        while (next < CONCURRENT_TOTAL) {
          next++;
          conc.push(await loginOnce(t, u.localpart, u.password));
        }
      }),
    );
    const concElapsed = performance.now() - concStart;
    done = true;
    await probe;
    console.log(
      `${CONCURRENCY} concurrent clients: ${conc.length} logins in ${ms(concElapsed)} = ${((conc.length * 1000) / concElapsed).toFixed(2)} logins/s; ` +
        `latency p50 ${ms(percentile(conc, 50))}, p95 ${ms(percentile(conc, 95))}`,
    );
    console.log(`whoami while they run: ${whoami.length} requests, p50 ${ms(percentile(whoami, 50))}, p95 ${ms(percentile(whoami, 95))}, max ${ms(Math.max(...whoami))}`);
    console.log(`RSS after the runs: ${mib(process.memoryUsage().rss)}`);
  } finally {
    await t.close();
  }
}

await main();
