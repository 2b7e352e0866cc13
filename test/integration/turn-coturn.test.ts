/**
 * Axon's TURN credentials against a real coturn (Debian's `coturn`):
 * turnserver runs on loopback only in `use-auth-secret` mode with the same
 * secret as the homeserver, and turnutils_uclient allocates relays with
 * what /voip/turnServer hands out. Forged credentials (a wrong password, a
 * stretched expiry, an expired username) must be refused with 401.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { turnRestPassword } from '../../src/services/turn.js';
import { ensureDebianProgram } from '../helpers/debian-package.js';
import { freePort } from '../helpers/ports.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const turnserver = ensureDebianProgram('turnserver', 'coturn');
const uclient = turnserver.ok ? ensureDebianProgram('turnutils_uclient', 'coturn') : turnserver;
const stunclient = turnserver.ok ? ensureDebianProgram('turnutils_stunclient', 'coturn') : turnserver;
const available = turnserver.ok && uclient.ok && stunclient.ok;
if (!available) process.stderr.write(`skipping the coturn test: ${turnserver.ok ? (uclient.ok ? '' : uclient.why) : turnserver.why}\n`);
const bin = (p: typeof turnserver) => (p.ok ? p.path : '/nonexistent');

const SECRET = 'coturn-and-axon-share-this-secret';
const REALM = 'test.local';

interface Run {
  code: number | null;
  output: string;
}

function run(file: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** Every IPv4/IPv6 TCP and UDP socket a process holds, as "proto addr:port" with the address in /proc's hex. */
function socketsOf(pid: number): { proto: string; local: string }[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // the fd closed meanwhile
    }
  }
  const found: { proto: string; local: string }[] = [];
  for (const proto of ['tcp', 'udp', 'tcp6', 'udp6']) {
    const path = `/proc/${pid}/net/${proto}`;
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9]!)) found.push({ proto, local: cols[1]! });
    }
  }
  return found;
}

describe.skipIf(!available)('coturn accepts the credentials Axon mints', () => {
  let t: TestServer;
  let shortLived: TestServer;
  let alice: TestUser;
  let proc: ChildProcess;
  let dir: string;
  let port = 0;
  let log = '';

  /** turnutils_uclient: one client, client-to-client relays (-y), no RTCP, one message, loopback only. */
  const allocate = (username: string, password: string) =>
    run(bin(uclient), ['-p', String(port), '-u', username, '-w', password, '-n', '1', '-m', '1', '-l', '64', '-y', '-c', '127.0.0.1'], 30_000);

  /** coturn's own verdict on this username's requests, from its verbose log. */
  const verdicts = (username: string) =>
    log
      .split('\n')
      .filter((l) => l.includes(`user <${username}>: incoming packet`))
      .map((l) => /incoming packet (.*)$/.exec(l)?.[1] ?? '');

  beforeAll(async () => {
    port = await freePort();
    const uris = [`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`];
    t = await startTestServer({ yaml: { turn_uris: uris, turn_shared_secret: SECRET, turn_user_lifetime: '1h' } });
    // A second homeserver with the same secret whose credentials live one second.
    shortLived = await startTestServer({ yaml: { turn_uris: uris, turn_shared_secret: SECRET, turn_user_lifetime: '1s' } });
    alice = await createUser(t, 'alice');
    dir = mkdtempSync(join(tmpdir(), 'axon-coturn-'));
    proc = spawn(
      bin(turnserver),
      [
        '-n', // no config file: /etc/turnserver.conf is not read
        '-v',
        '--listening-ip',
        '127.0.0.1',
        '--relay-ip',
        '127.0.0.1',
        '--listening-port',
        String(port),
        '--use-auth-secret',
        '--static-auth-secret',
        SECRET,
        '--realm',
        REALM,
        '--no-tls',
        '--no-dtls',
        '--no-cli',
        '--no-rfc5780',
        '--allow-loopback-peers',
        '--log-file',
        'stdout',
        '--simple-log',
        '--pidfile',
        join(dir, 'turnserver.pid'),
        '--userdb',
        join(dir, 'turndb'),
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout?.on('data', (d: Buffer) => (log += d.toString('utf8')));
    proc.stderr?.on('data', (d: Buffer) => (log += d.toString('utf8')));
    // Ready when a STUN binding request is answered.
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error(`turnserver exited (${proc.exitCode}):\n${log}`);
      const probe = await run(bin(stunclient), ['-p', String(port), '127.0.0.1'], 5_000);
      if (probe.code === 0) break;
      if (i > 50) throw new Error(`turnserver did not answer STUN:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }
    await t?.close();
    await shortLived?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs turnserver on 127.0.0.1 only', () => {
    const sockets = socketsOf(proc.pid!);
    expect(sockets.length).toBeGreaterThan(0);
    for (const s of sockets) {
      expect(s.proto === 'tcp' || s.proto === 'udp', `${s.proto} ${s.local}`).toBe(true);
      // 127.0.0.1 as /proc writes it (little-endian hex).
      expect(s.local.startsWith('0100007F:'), `${s.proto} ${s.local}`).toBe(true);
    }
  });

  it('allocates relays with the credentials from /voip/turnServer', async () => {
    const res = await api(t, 'GET', '/_matrix/client/r0/voip/turnServer', { token: alice.accessToken });
    expect(res.status).toBe(200);
    const { username, password, uris } = res.body as { username: string; password: string; uris: string[] };
    expect(uris[0]).toBe(`turn:127.0.0.1:${port}?transport=udp`);
    const out = await allocate(username, password);
    expect(out.code, out.output).toBe(0);
    expect(out.output).not.toMatch(/Cannot complete Allocation/);
    // Two clients relayed one message each to the other.
    expect(out.output).toMatch(/tot_recv_msgs=[1-9]/);
    const v = verdicts(username);
    expect(v).toContain('ALLOCATE processed, success');
    expect(v.some((l) => l.includes('error 401'))).toBe(false);
  });

  it('refuses a wrong password with 401', async () => {
    const res = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer', { token: alice.accessToken });
    const username = res.body.username as string;
    const wrong = turnRestPassword('some other secret', username);
    const out = await allocate(username, wrong);
    expect(out.code).not.toBe(0);
    expect(out.output).toMatch(/Cannot complete Allocation/);
    const v = verdicts(username);
    expect(v.some((l) => l.includes('error 401: Unauthorized'))).toBe(true);
    expect(v).not.toContain('ALLOCATE processed, success');
  });

  it('refuses a username whose expiry was stretched, password kept', async () => {
    const res = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer', { token: alice.accessToken });
    const [expiry, ...rest] = (res.body.username as string).split(':');
    const stretched = `${Number(expiry) + 86_400}:${rest.join(':')}`;
    const out = await allocate(stretched, res.body.password as string);
    expect(out.code).not.toBe(0);
    expect(out.output).toMatch(/Cannot complete Allocation/);
    expect(verdicts(stretched).some((l) => l.includes('error 401'))).toBe(true);
    expect(verdicts(stretched)).not.toContain('ALLOCATE processed, success');
  });

  it('refuses an expired username even when its password is right', async () => {
    const username = `${Math.floor(Date.now() / 1000) - 60}:${alice.userId}`;
    const out = await allocate(username, turnRestPassword(SECRET, username));
    expect(out.code).not.toBe(0);
    expect(out.output).toMatch(/Cannot complete Allocation/);
    expect(verdicts(username).some((l) => l.includes('error 401'))).toBe(true);
    expect(verdicts(username)).not.toContain('ALLOCATE processed, success');
  });

  it('refuses credentials Axon minted once their ttl has passed', async () => {
    const bob = await createUser(shortLived, 'bob');
    const res = await api(shortLived, 'GET', '/_matrix/client/v3/voip/turnServer', { token: bob.accessToken });
    expect(res.body.ttl).toBe(1);
    const username = res.body.username as string;
    const expiry = Number(username.split(':')[0]);
    // coturn accepts up to and including the expiry second; wait until it is past.
    while (Math.floor(Date.now() / 1000) <= expiry) await new Promise((r) => setTimeout(r, 200));
    const out = await allocate(username, res.body.password as string);
    expect(out.code).not.toBe(0);
    expect(out.output).toMatch(/Cannot complete Allocation/);
    expect(verdicts(username).some((l) => l.includes('error 401'))).toBe(true);
  });
});
