#!/usr/bin/env node
/**
 * `axonctl start|stop|restart|status [-c CONFIG ...]`: Synapse's `synctl`
 * for servers run without systemd, working on the config's `pid_file`.
 * `start` runs the server in the background (its output appended to
 * `<data_dir>/axon.out`) and returns once it answers /health; `stop`
 * sends SIGTERM and waits for the clean exit.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import type { HomeserverConfig } from '../config/types.js';
import { readPidFile, runningPid } from './pid-file.js';

const MAIN_JS = resolve(dirname(fileURLToPath(import.meta.url)), '../main.js');
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;

const USAGE = `Usage: axonctl start|stop|restart|status [-c CONFIG]...

  -c, --config-path PATH   the server's config file or conf.d directory, as for axon
                           (may be given several times; default ./homeserver.yaml)

Works on the config's pid_file. Under systemd, use systemctl instead.
status exits 0 when the server runs and 3 when it does not.`;

class CtlError extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function pidFileOf(config: HomeserverConfig): string {
  if (!config.pid_file) throw new CtlError(`axonctl needs pid_file in the config (e.g. pid_file: ${join(config.data_dir, 'homeserver.pid')})`);
  return config.pid_file;
}

/** Where start polls /health: the first HTTP listener, on loopback when it binds every address. */
function healthUrl(config: HomeserverConfig): string | undefined {
  const l = config.listeners.find((x) => x.type === 'http');
  if (!l) return undefined;
  const bind = l.bind_addresses[0] ?? '::';
  const host = bind === '::' || bind === '0.0.0.0' ? '127.0.0.1' : bind;
  return `http://${host.includes(':') ? `[${host}]` : host}:${l.port}/health`;
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function start(config: HomeserverConfig, configArgs: string[]): Promise<number> {
  const pidFile = pidFileOf(config);
  const running = runningPid(pidFile);
  if (running !== undefined) {
    say(`Axon is already running (pid ${running}).`);
    return 0;
  }
  const outFile = join(config.data_dir, 'axon.out');
  const out = openSync(outFile, 'a');
  const offset = statSync(outFile).size;
  const child = spawn(process.execPath, [MAIN_JS, ...configArgs], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  let exitCode: number | null | undefined;
  child.on('exit', (code) => (exitCode = code));
  child.unref();
  const url = healthUrl(config);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      const text = readFileSync(outFile, 'utf8').slice(offset).trimEnd();
      throw new CtlError(`Axon failed to start (exit status ${exitCode}):\n${text || '(no output)'}`);
    }
    const pid = readPidFile(pidFile);
    if (pid === child.pid && (url === undefined || (await healthy(url)))) {
      say(`Axon started (pid ${pid}); its output goes to ${outFile}.`);
      return 0;
    }
    await sleep(100);
  }
  throw new CtlError(`Axon (pid ${child.pid}) did not answer ${url ?? 'its pid file'} within ${START_TIMEOUT_MS / 1000} s; see ${outFile}:\n${tail(outFile)}`);
}

async function stop(config: HomeserverConfig): Promise<number> {
  const pidFile = pidFileOf(config);
  const pid = runningPid(pidFile);
  if (pid === undefined) {
    if (existsSync(pidFile)) {
      rmSync(pidFile, { force: true });
      say(`Axon is not running (removed the stale pid file ${pidFile}).`);
    } else {
      say('Axon is not running.');
    }
    return 0;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new CtlError(`Axon (pid ${pid}) is still running ${STOP_TIMEOUT_MS / 1000} s after SIGTERM`);
    await sleep(50);
  }
  say(`Axon stopped (pid ${pid}).`);
  return 0;
}

function status(config: HomeserverConfig): number {
  const pid = runningPid(pidFileOf(config));
  if (pid === undefined) {
    say('Axon is not running.');
    return 3; // LSB: program is not running
  }
  say(`Axon is running (pid ${pid}).`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'config-path': { type: 'string', short: 'c', multiple: true }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    throw new CtlError(`${(err as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    say(USAGE);
    return 0;
  }
  const action = positionals[0];
  if (positionals.length !== 1 || !['start', 'stop', 'restart', 'status'].includes(action ?? '')) {
    throw new CtlError(`expected one of start, stop, restart, status\n\n${USAGE}`);
  }
  const paths = (values['config-path'] ?? ['homeserver.yaml']).map((p) => resolve(p));
  const config = loadConfig(paths, { env: process.env, warn: () => undefined, info: () => undefined });
  const configArgs = paths.flatMap((p) => ['-c', p]);
  switch (action) {
    case 'start':
      return start(config, configArgs);
    case 'stop':
      return stop(config);
    case 'restart':
      await stop(config);
      return start(config, configArgs);
    default:
      return status(config);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const known = err instanceof CtlError || err instanceof ConfigError;
    process.stderr.write(`axonctl: ${err instanceof Error ? err.message : String(err)}\n`);
    if (!known && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  },
);
