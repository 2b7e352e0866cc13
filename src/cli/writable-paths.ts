/**
 * Before the server listens: every path it will write is writable by the
 * user it runs as. Without this, a config whose data paths point into a
 * root-owned /etc/axon fails only later (the pid file after the listener is
 * up, uploads with a 500), so each problem is named here, with its key.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';
import type { HomeserverConfig } from '../config/types.js';

export interface WritablePath {
  /** The config key that names the path, e.g. `pid_file`, `log_config (handler file)`. */
  key: string;
  path: string;
  /** A directory the server fills (created here if missing), or a file it creates or appends to. */
  kind: 'dir' | 'file';
}

/** The paths a configuration makes the server write, besides those of its log config. */
export function writablePaths(config: HomeserverConfig): WritablePath[] {
  const out: WritablePath[] = [{ key: 'media_store_path', path: config.media_store_path, kind: 'dir' }];
  if (config.pid_file !== undefined) out.push({ key: 'pid_file', path: config.pid_file, kind: 'file' });
  if (config.database.kind === 'embedded') {
    out.push({ key: 'database (the embedded database, in data_dir)', path: config.database.path, kind: 'dir' });
  }
  return out;
}

function who(): string {
  try {
    const u = userInfo();
    return `user ${u.username} (uid ${u.uid})`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied for ${who()}`;
  if (code === 'EROFS') return 'read-only file system (systemd: add it to ReadWritePaths)';
  if (code === 'ENOTDIR') return 'a parent is not a directory';
  return code ?? String(err);
}

/** What is at `path`: a directory, a file, nothing, or an error code (EACCES when a parent cannot be searched). */
function look(path: string): 'dir' | 'file' | 'missing' | string {
  try {
    return statSync(path).isDirectory() ? 'dir' : 'file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'missing' : reason(err);
  }
}

/** Why `p` cannot be written, or undefined when it can. Creates a missing directory of kind `dir`. */
function problem(p: WritablePath): string | undefined {
  const here = look(p.path);
  try {
    if (p.kind === 'dir') {
      if (here === 'file') return 'exists and is not a directory';
      if (here === 'missing') {
        try {
          mkdirSync(p.path, { recursive: true });
        } catch (err) {
          return `cannot create it (${reason(err)})`;
        }
      } else if (here !== 'dir') {
        return here;
      }
      accessSync(p.path, constants.W_OK | constants.X_OK);
      return undefined;
    }
    if (here === 'dir') return 'is a directory, not a file';
    if (here === 'file') {
      accessSync(p.path, constants.W_OK);
      return undefined;
    }
    if (here !== 'missing') return here;
    const dir = dirname(p.path);
    const parent = look(dir);
    if (parent === 'missing') return `its directory ${dir} does not exist`;
    if (parent !== 'dir') return parent === 'file' ? `${dir} is not a directory` : `cannot reach ${dir} (${parent})`;
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      return `cannot create it in ${dir} (${reason(err)})`;
    }
    return undefined;
  } catch (err) {
    return reason(err);
  }
}

/**
 * Throws a ConfigError naming every path that cannot be written, one line
 * each. When such a path lies inside the config directory, adds the usual
 * cause: a config generated without --data-directory.
 */
export function checkWritablePaths(config: HomeserverConfig, extra: WritablePath[] = []): void {
  const lines: string[] = [];
  let inConfigDir = false;
  for (const p of [...writablePaths(config), ...extra]) {
    const why = problem(p);
    if (why === undefined) continue;
    lines.push(`${p.key}: cannot write ${p.path}: ${why}`);
    const rel = relative(config.config_dir, p.path);
    if (!rel.startsWith('..') && !rel.startsWith('/')) inConfigDir = true;
  }
  if (lines.length === 0) return;
  if (inConfigDir) {
    lines.push(
      `(these paths are in the config directory ${config.config_dir}: was the config generated without --data-directory? ` +
        'Point them at a directory the server can write, e.g. /var/lib/axon, or regenerate with --data-directory.)',
    );
  }
  throw new ConfigError(lines.join('\n'));
}
