/**
 * Start-up cost on both databases: time from spawning `node dist/src/main.js`
 * until /health answers (cold: new database, migrations applied; warm: the
 * same database again), and idle RSS a few seconds later.
 *
 *   npm run build && node dist/bench/startup.js [runs]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { formatSigningKeyFile, generateSigningKey } from '../src/core/signing.js';
import { createTestDatabase, testDatabaseKind } from '../test/helpers/database.js';
import { freePort } from '../test/helpers/ports.js';
import { runMain } from '../test/helpers/process.js';

const RUNS = Number(process.argv[2] ?? 3);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function startOnce(cfg: string, port: number): Promise<{ ms: number; rss: number }> {
  const t0 = performance.now();
  const child = runMain(['-c', cfg], { cwd: tmpdir(), env: { AXON_LOG_LEVEL: 'warn', DATABASE_URL: '' } });
  let ms = NaN;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.ok) {
        ms = performance.now() - t0;
        break;
      }
    } catch {
      // not listening yet
    }
    if (child.proc.exitCode !== null) throw new Error(`server exited: ${child.output()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 3000));
  const rss = rssMiB(child.proc.pid ?? 0);
  child.proc.kill('SIGTERM');
  await child.exited;
  return { ms, rss };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function bench(kind: 'postgres' | 'embedded'): Promise<void> {
  const cold: number[] = [];
  const warm: number[] = [];
  const rssCold: number[] = [];
  const rssWarm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'axon-bench-'));
    const port = await freePort();
    const keyPath = join(dir, 'k.key');
    writeFileSync(keyPath, formatSigningKeyFile([generateSigningKey()]));
    let drop: (() => Promise<void>) | undefined;
    let database: Record<string, unknown> = { name: 'sqlite3', args: { database: join(dir, 'db') } };
    if (kind === 'postgres') {
      const db = await createTestDatabase();
      drop = db.drop;
      database = { name: 'psycopg2', args: { user: 'postgres', host: '127.0.0.1', database: db.name, cp_min: 1, cp_max: 10 } };
    }
    const cfg = join(dir, 'homeserver.yaml');
    writeFileSync(
      cfg,
      stringify({
        server_name: 'bench.local',
        signing_key_path: keyPath,
        database,
        listeners: [{ port, type: 'http', bind_addresses: ['127.0.0.1'], resources: [{ names: ['client', 'federation'] }] }],
      }),
    );
    const c = await startOnce(cfg, port);
    const w = await startOnce(cfg, port);
    cold.push(c.ms);
    warm.push(w.ms);
    rssCold.push(c.rss);
    rssWarm.push(w.rss);
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  }
  const f = (n: number) => n.toFixed(0);
  process.stdout.write(
    `${kind.padEnd(9)} cold start ${f(median(cold))} ms (new database, migrations)  ` +
      `warm start ${f(median(warm))} ms  idle RSS ${f(median(rssCold))} MiB after cold, ${f(median(rssWarm))} MiB after warm  [median of ${RUNS}]\n`,
  );
}

process.stdout.write(`startup benchmark, node ${process.version}\n`);
if ((await testDatabaseKind()) === 'postgres') await bench('postgres');
else process.stdout.write('postgres  (no server at 127.0.0.1:5432; skipped)\n');
await bench('embedded');
