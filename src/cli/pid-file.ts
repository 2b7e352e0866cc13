/**
 * The pid file (`pid_file`): written before the server listens, removed when
 * it stops, and read by `axonctl`. A pid is only taken to be Axon's while
 * that process is alive and runs our entry point, so a stale file (after a
 * crash or a reboot, its pid reused) never makes anyone signal a stranger.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../config/errors.js';

/** The pid in the file, or undefined when there is no file or it holds no pid. */
export function readPidFile(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether `pid` is a live process that looks like an Axon server (on Linux, by its command line). */
export function isAxonProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive but another user's; still ours to refuse to start over.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.some((arg) => /(^|[\\/])(main\.js|axon)$/.test(arg));
  } catch {
    // No /proc (not Linux): trust the pid file.
    return true;
  }
}

/** The pid of the Axon server the file names, if it is running. */
export function runningPid(path: string): number | undefined {
  const pid = readPidFile(path);
  return pid !== undefined && pid !== process.pid && isAxonProcess(pid) ? pid : undefined;
}

/** Writes this process's pid, refusing when the file names another running Axon. */
export function writePidFile(path: string): void {
  const other = runningPid(path);
  if (other !== undefined) {
    throw new ConfigError(`another Axon server (pid ${other}) is running with this pid file ${path}; stop it first`, { key: 'pid_file' });
  }
  writeFileSync(path, `${process.pid}\n`);
}

/** Removes the file if it still holds this process's pid. */
export function removePidFile(path: string): void {
  if (readPidFile(path) === process.pid) rmSync(path, { force: true });
}
