/**
 * `log_config` points at a Python logging configuration (YAML dictConfig, as
 * Synapse's generated `<server_name>.log.config` and Debian's `log.yaml`).
 * Axon logs with pino to stdout (journald, docker logs), so the handlers and
 * formatters in that file do not apply; only the level is taken from it:
 * `loggers.synapse.level` if set, else `root.level`.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/** pino's levels. */
export const PINO_LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/**
 * A Python logging level (name or number) or a pino level name, as a pino
 * level; undefined if it is neither.
 */
export function toPinoLevel(level: unknown): string | undefined {
  if (typeof level === 'number' && Number.isInteger(level)) {
    if (level < 20) return 'debug'; // NOTSET (0) and DEBUG (10)
    if (level < 30) return 'info';
    if (level < 40) return 'warn';
    if (level < 50) return 'error';
    return 'fatal';
  }
  if (typeof level !== 'string') return undefined;
  const s = level.trim().toLowerCase();
  if (PINO_LEVELS.has(s)) return s;
  switch (s) {
    case 'notset':
      return 'debug';
    case 'warning':
      return 'warn';
    case 'critical':
      return 'fatal';
    default:
      return /^\d+$/.test(s) ? toPinoLevel(Number(s)) : undefined;
  }
}

export type LogConfigResult =
  | { ok: true; level: string | undefined }
  | { ok: false; reason: string };

/** Reads the level from a Python logging YAML file; never throws. */
export function readLogConfigLevel(path: string): LogConfigResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'file not found' : `cannot read it (${code ?? String(err)})` };
  }
  let doc: unknown;
  try {
    doc = parse(text, { version: '1.1', uniqueKeys: false });
  } catch (err) {
    return { ok: false, reason: `not valid YAML (${(err as Error).message.split('\n')[0]})` };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { ok: false, reason: 'not a Python logging dictionary' };
  }
  const d = doc as Record<string, unknown>;
  const loggers = d['loggers'];
  const synapse =
    loggers && typeof loggers === 'object' ? (loggers as Record<string, unknown>)['synapse'] : undefined;
  const synapseLevel = synapse && typeof synapse === 'object' ? (synapse as Record<string, unknown>)['level'] : undefined;
  const root = d['root'];
  const rootLevel = root && typeof root === 'object' ? (root as Record<string, unknown>)['level'] : undefined;
  const raw = synapseLevel ?? rootLevel;
  if (raw === undefined || raw === null) return { ok: true, level: undefined };
  const level = toPinoLevel(raw);
  if (!level) return { ok: false, reason: `unknown level ${JSON.stringify(raw)}` };
  return { ok: true, level };
}
