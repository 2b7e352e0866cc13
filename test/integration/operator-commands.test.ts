/**
 * The commands an operator types: `axon`, `axonctl` and
 * `register_new_matrix_user` on PATH after the README's global install, and
 * `axonctl start|stop|restart|status` driving a real server through its pid
 * file, as Synapse's synctl does.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../helpers/ports.js';
import { runNode } from '../helpers/process.js';
import { baseTestYaml } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AXONCTL_JS = join(ROOT, 'dist/src/cli/axonctl.js');

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

describe('the README install puts the commands on PATH', () => {
  it('npm install --global links axon, axonctl and register_new_matrix_user, and each runs', () => {
    const prefix = tempDir('axon-prefix-');
    execFileSync('npm', ['install', '--global', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', ROOT], { stdio: 'pipe' });
    const env = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` };
    expect(execFileSync('axon', ['--version'], { env, encoding: 'utf8' })).toMatch(/^Axon \S+\n$/);
    expect(execFileSync('axonctl', ['--help'], { env, encoding: 'utf8' })).toMatch(/start\|stop\|restart\|status/);
    expect(execFileSync('register_new_matrix_user', ['--help'], { env, encoding: 'utf8' })).toMatch(/shared.secret|--user|-u/i);
  });
});

describe('axonctl', () => {
  let dir: string;
  let cfg: string;
  let port: number;
  let pidFile: string;

  const ctl = async (...args: string[]) => {
    const child = runNode(AXONCTL_JS, [...args, '-c', cfg], { cwd: dir, env: { DATABASE_URL: '' } });
    const code = await child.exited;
    return { code, out: child.output() };
  };
  const health = async () => (await fetch(`http://127.0.0.1:${port}/health`)).status;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    dir = tempDir('axon-ctl-');
    const base = await baseTestYaml(dir, 'ctl.test');
    if (base.dropDb) cleanups.push(base.dropDb);
    port = await freePort();
    pidFile = join(dir, 'homeserver.pid');
    cfg = join(dir, 'homeserver.yaml');
    writeFileSync(
      cfg,
      stringify({
        ...base.yaml,
        pid_file: pidFile,
        listeners: [{ port, type: 'http', bind_addresses: ['127.0.0.1'], tls: false, resources: [{ names: ['client'] }] }],
      }),
    );
    // Whatever happens, no server outlives the test.
    cleanups.unshift(() => {
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    });
  });

  it('status, start, start again, restart, stop, status', async () => {
    expect(await ctl('status')).toMatchObject({ code: 3, out: expect.stringMatching(/not running/) });

    const started = await ctl('start');
    expect(started.code, started.out).toBe(0);
    const pid = Number(/pid (\d+)/.exec(started.out)?.[1]);
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(pid));
    expect(await health()).toBe(200);

    expect(await ctl('start')).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`already running \\(pid ${pid}\\)`)) });
    expect(await ctl('status')).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`running \\(pid ${pid}\\)`)) });

    const restarted = await ctl('restart');
    expect(restarted.code, restarted.out).toBe(0);
    expect(restarted.out).toMatch(new RegExp(`stopped \\(pid ${pid}\\)`));
    const pid2 = Number(/started \(pid (\d+)\)/.exec(restarted.out)?.[1]);
    expect(pid2).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    expect(await health()).toBe(200);

    const stopped = await ctl('stop');
    expect(stopped).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`stopped \\(pid ${pid2}\\)`)) });
    expect(alive(pid2)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
    await expect(health()).rejects.toThrow();
    expect((await ctl('status')).code).toBe(3);
    // The server's own output went to the data directory's axon.out.
    expect(readFileSync(join(dir, 'axon.out'), 'utf8')).toMatch(/shut down cleanly/);
  });

  it('never signals a process that is not Axon, even when a stale pid file names it', async () => {
    const stranger: ChildProcess = spawn('sleep', ['60'], { stdio: 'ignore' });
    cleanups.push(() => void stranger.kill('SIGKILL'));
    writeFileSync(pidFile, `${stranger.pid}\n`);
    expect((await ctl('status')).code).toBe(3);
    expect(await ctl('stop')).toMatchObject({ code: 0, out: expect.stringMatching(/stale pid file/) });
    expect(alive(stranger.pid as number)).toBe(true);
    expect(existsSync(pidFile)).toBe(false);
  });

  it('start reports why the server could not start', async () => {
    const blocker = await freePort();
    const bad = join(dir, 'taken.yaml');
    // The listener's port is already taken by another server.
    const holder = (await import('node:net')).createServer().listen(blocker, '127.0.0.1');
    cleanups.push(() => void holder.close());
    writeFileSync(bad, stringify({ listeners: [{ port: blocker, type: 'http', bind_addresses: ['127.0.0.1'], resources: [{ names: ['client'] }] }] }));
    const child = runNode(AXONCTL_JS, ['start', '-c', cfg, '-c', bad], { cwd: dir, env: { DATABASE_URL: '' } });
    expect(await child.exited).toBe(1);
    expect(child.output()).toMatch(/failed to start[\s\S]*EADDRINUSE/);
    expect(existsSync(pidFile)).toBe(false);
  });
});
