/**
 * Makes sure a Debian package's program is on the machine for a test that
 * runs the real thing (nginx, coturn). On a fresh Debian machine as root it
 * installs the package; elsewhere it reports why not, and the test is skipped
 * (CI installs the packages in .ci/run, so there it always runs).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function ensureDebianProgram(program: string, pkg: string): { ok: true; path: string } | { ok: false; why: string } {
  const find = () => ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => `${d}/${program}`).find((p) => existsSync(p));
  const found = find();
  if (found) return { ok: true, path: found };
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    return { ok: false, why: `${program} is not installed and this is not a Debian machine as root: apt-get install ${pkg}` };
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', pkg], { env, stdio: 'ignore', timeout: 300_000 });
  } catch {
    execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', '-qq', pkg], { env, stdio: 'ignore', timeout: 300_000 });
  }
  const installed = find();
  return installed ? { ok: true, path: installed } : { ok: false, why: `installing ${pkg} did not provide ${program}` };
}
