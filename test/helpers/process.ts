/**
 * Runs the built server (`node dist/src/main.js`, what `npm start` runs) as
 * a child process, for tests of the CLI, start-up and signals. `npm test`
 * builds dist/ before vitest runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// From test/helpers/ (vitest) or dist/test/helpers/ (compiled benchmarks).
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN_JS = /[\\/]dist[\\/]$/.test(ROOT) ? join(ROOT, 'src/main.js') : join(ROOT, 'dist/src/main.js');

export function assertBuilt(): void {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run 'npm run build' (npm test does it first)`);
}

export interface Child {
  proc: ChildProcess;
  output(): string;
  /** Resolves when a line of output matches, or rejects when the process exits first or time runs out. */
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  exited: Promise<number | null>;
}

export interface RunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user and group (the test must run as root). */
  uid?: number;
  gid?: number;
  /** Options for node itself, before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

export function runMain(args: string[], opts: RunOptions): Child {
  assertBuilt();
  return runNode(MAIN_JS, args, opts);
}

/** Any of our built scripts (dist/src/…) as a child process, with output collected. */
export function runNode(script: string, args: string[], opts: RunOptions): Child {
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString('utf8');
    for (const l of listeners) l();
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    output: () => out,
    exited,
    waitFor: (pattern, ms = 60_000) =>
      new Promise<string>((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out);
          if (m) {
            cleanup();
            resolve(m[0]);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; output:\n${out}`));
        }, ms);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then((code) => {
          if (!pattern.test(out)) {
            cleanup();
            reject(new Error(`process exited (${code}) before ${pattern}; output:\n${out}`));
          }
        });
        check();
      }),
  };
}

/**
 * The first listening URL the server logged: from pino's JSON
 * (`"listening":["http://…"]`) or from a text line of a log config
 * (`Axon is running on http://…, http://…`).
 */
export async function listeningUrl(child: Child): Promise<string> {
  const line = await child.waitFor(/"listening":\["[^"]+"|Axon is running on http\S+/);
  const url = /"listening":\["([^"]+)"/.exec(line)?.[1] ?? /Axon is running on (http[^\s,"]+)/.exec(line)?.[1];
  if (!url) throw new Error(`no URL in ${line}`);
  return url;
}
