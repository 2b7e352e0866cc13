/**
 * `log_config` points at a Python logging configuration: the YAML form of
 * `logging.config.dictConfig` that Synapse reads (its generated
 * `<server_name>.log.config`, Debian's `/etc/matrix-synapse/log.yaml`).
 * This module reads and checks it into a LogConfigSpec; src/logging/ acts
 * on it. What is honoured: `version`, `formatters` (`format`, `datefmt`,
 * `style`, Synapse's JSON formatters), `filters` (accepted, no effect),
 * `handlers` (console, file, rotating, buffering, journald), `loggers`
 * (`level`, `handlers`, `propagate`), `root`, `disable_existing_loggers`
 * (accepted, no effect: Axon's loggers are made after the file is read).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from './errors.js';
import { isObj, type Obj } from './reader.js';

/** pino's levels. */
export const PINO_LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/**
 * A Python logging level (name or number) or a pino level name, as a pino
 * level; undefined if it is neither. A number shows records at or above it,
 * as in Python: 15 shows INFO and up, so it is 'info'.
 */
export function toPinoLevel(level: unknown): string | undefined {
  if (typeof level === 'number' && Number.isInteger(level)) {
    if (level <= 10) return 'debug'; // NOTSET (0) and DEBUG (10)
    if (level <= 20) return 'info';
    if (level <= 30) return 'warn';
    if (level <= 40) return 'error';
    if (level <= 50) return 'fatal';
    return 'silent';
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

/** A problem with the log config file; the message names the file and the key. */
export class LogConfigError extends ConfigError {
  constructor(file: string, key: string, detail: string) {
    super(detail, { file: `log_config ${file}`, key });
    this.name = 'LogConfigError';
  }
}

export type FormatterSpec =
  | { kind: 'text'; format: string; datefmt?: string; style: '%' | '{' | '$'; defaults: Record<string, unknown> }
  /** synapse.logging.JsonFormatter (no time) and TerseJsonFormatter (with `time`). */
  | { kind: 'json'; terse: boolean };

interface HandlerCommon {
  name: string;
  /** pino level below which records are dropped; undefined: all. */
  level?: string;
  formatter?: string;
}

export type HandlerSpec = HandlerCommon &
  (
    | { kind: 'stream'; stream: 'stdout' | 'stderr' }
    | { kind: 'file'; filename: string; append: boolean; encoding: BufferEncoding; watched: boolean }
    | { kind: 'rotating'; filename: string; append: boolean; encoding: BufferEncoding; maxBytes: number; backupCount: number }
    | { kind: 'timed'; filename: string; encoding: BufferEncoding; when: TimedWhen; interval: number; backupCount: number; utc: boolean }
    | { kind: 'memory'; target?: string; capacity: number; flushLevel: string; flushOnClose: boolean; period?: number }
    | { kind: 'journal'; identifier: string; socket: string }
    | { kind: 'null' }
  );

/** TimedRotatingFileHandler's `when`, upper-cased; W0-W6 are weekly. */
export type TimedWhen = 'S' | 'M' | 'H' | 'D' | 'MIDNIGHT' | `W${0 | 1 | 2 | 3 | 4 | 5 | 6}`;

export interface LoggerSpec {
  /** pino level; undefined inherits from the nearest configured ancestor (Python's NOTSET). */
  level?: string;
  handlers: string[];
  propagate: boolean;
}

export interface LogConfigSpec {
  /** The file, as log_config names it (absolute). */
  path: string;
  formatters: Map<string, FormatterSpec>;
  handlers: Map<string, HandlerSpec>;
  /** By Python logger name (`synapse.storage.SQL`, `axon.http`, ...). */
  loggers: Map<string, LoggerSpec>;
  root: LoggerSpec;
  /** For the operator, once each: unknown classes, ignored keys. */
  warnings: string[];
}

/** journald's stdout stream socket, as sd_journal_stream_fd(3) connects to it. */
export const JOURNAL_STDOUT_SOCKET = '/run/systemd/journal/stdout';

const STREAM_CLASSES = new Set(['logging.StreamHandler']);
const FILE_CLASSES = new Set(['logging.FileHandler', 'logging.handlers.WatchedFileHandler']);
const MEMORY_CLASSES = new Set(['logging.handlers.MemoryHandler', 'synapse.logging.handlers.PeriodicallyFlushingMemoryHandler']);
const JOURNAL_CLASSES = new Set(['systemd.journal.JournalHandler', 'systemd.journal.JournaldLogHandler']);
const NULL_CLASSES = new Set(['logging.NullHandler']);
/** Filters Synapse's configs name: they add the request to records, which Axon always does. */
const KNOWN_FILTERS = new Set([
  'synapse.logging.context.LoggingContextFilter',
  'synapse.util.logcontext.LoggingContextFilter',
  'synapse.logging.filter.MetadataFilter',
]);
const JSON_FORMATTERS: Record<string, boolean> = {
  'synapse.logging.JsonFormatter': false,
  'synapse.logging._terse_json.JsonFormatter': false,
  'synapse.logging.TerseJsonFormatter': true,
  'synapse.logging._terse_json.TerseJsonFormatter': true,
};


/** Reads and checks a log config file; throws LogConfigError naming the file and what is wrong. */
export function loadLogConfig(path: string): LogConfigSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LogConfigError(path, '', code === 'ENOENT' ? 'file not found' : `cannot read it (${code ?? String(err)})`);
  }
  return parseLogConfig(text, path);
}

/** Checks the text of a log config; `path` is for messages and nothing else. */
export function parseLogConfig(text: string, path: string): LogConfigSpec {
  let doc: unknown;
  try {
    // PyYAML reads YAML 1.1 (yes/no booleans); the last of duplicate keys wins there too.
    doc = parse(text, { version: '1.1', uniqueKeys: false });
  } catch (err) {
    throw new LogConfigError(path, '', `not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (!isObj(doc)) throw new LogConfigError(path, '', 'not a Python logging dictionary (expected a mapping with version: 1)');
  return new Checker(path).check(doc);
}

class Checker {
  private readonly warnings: string[] = [];

  constructor(private readonly path: string) {}

  private fail(key: string, detail: string): never {
    throw new LogConfigError(this.path, key, detail);
  }

  private warn(msg: string): void {
    if (!this.warnings.includes(msg)) this.warnings.push(msg);
  }

  private section(doc: Obj, key: string): Obj {
    const v = doc[key];
    if (v === undefined || v === null) return {};
    if (!isObj(v)) this.fail(key, 'expected a mapping');
    return v;
  }

  check(doc: Obj): LogConfigSpec {
    if (doc['version'] === undefined) this.fail('version', "missing: Python's logging needs version: 1");
    if (doc['version'] !== 1) this.fail('version', `unsupported version ${JSON.stringify(doc['version'])} (only 1 exists)`);
    if (doc['incremental'] === true) this.warn('incremental: true is not supported; the file is read as a whole configuration');
    if (doc['structured'] === true) this.fail('structured', 'removed in Synapse 1.54; use a formatter of class synapse.logging.TerseJsonFormatter');
    const del = doc['disable_existing_loggers'];
    if (del !== undefined && typeof del !== 'boolean') this.fail('disable_existing_loggers', 'expected true or false');

    const filters = new Set<string>();
    for (const [name, f] of Object.entries(this.section(doc, 'filters'))) {
      if (!isObj(f)) this.fail(`filters.${name}`, 'expected a mapping');
      const cls = f['()'] ?? f['class'];
      if (typeof cls === 'string' && !KNOWN_FILTERS.has(cls)) this.warn(`filter class ${cls} is not supported; filter '${name}' is ignored`);
      filters.add(name);
    }

    const formatters = new Map<string, FormatterSpec>();
    for (const [name, f] of Object.entries(this.section(doc, 'formatters'))) {
      formatters.set(name, this.formatter(name, f));
    }

    const handlers = new Map<string, HandlerSpec>();
    const rawHandlers = this.section(doc, 'handlers');
    for (const [name, h] of Object.entries(rawHandlers)) {
      const spec = this.handler(name, h, formatters, filters);
      if (spec) handlers.set(name, spec);
    }
    for (const h of handlers.values()) {
      if (h.kind === 'memory' && h.target !== undefined && !(h.target in rawHandlers)) {
        this.fail(`handlers.${h.name}.target`, `no handler named '${h.target}'`);
      }
      if (h.kind === 'memory' && h.target !== undefined && rawHandlers[h.target] !== undefined && !handlers.has(h.target)) {
        // The target was an unsupported class (already warned about): buffer into nothing.
        delete h.target;
      }
    }

    const known = (where: string, list: string[]) => {
      for (const h of list) if (!(h in rawHandlers)) this.fail(where, `no handler named '${h}'`);
      return list.filter((h) => handlers.has(h));
    };
    const loggers = new Map<string, LoggerSpec>();
    for (const [name, l] of Object.entries(this.section(doc, 'loggers'))) {
      const spec = this.logger(`loggers.${name}`, l, filters);
      spec.handlers = known(`loggers.${name}.handlers`, spec.handlers);
      loggers.set(name, spec);
    }
    const rootRaw = doc['root'] ?? (isObj(doc['loggers']) ? (doc['loggers'] as Obj)[''] : undefined);
    const root = this.logger('root', rootRaw ?? {}, filters);
    root.handlers = known('root.handlers', root.handlers);
    // Python's root logger is at WARNING until configured otherwise.
    root.level ??= rootRaw !== undefined && isObj(rootRaw) && rootRaw['level'] !== undefined ? 'debug' : 'warn';
    loggers.delete('');
    return { path: this.path, formatters, handlers, loggers, root, warnings: this.warnings };
  }

  private level(key: string, v: unknown): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && v.trim().toUpperCase() === 'NOTSET') return undefined;
    if (v === 0) return undefined;
    const l = toPinoLevel(v);
    if (!l) this.fail(key, `unknown level ${JSON.stringify(v)} (DEBUG, INFO, WARNING, ERROR, CRITICAL or a number)`);
    return l;
  }

  private filterRefs(key: string, v: unknown, filters: Set<string>): void {
    if (v === undefined || v === null) return;
    if (!Array.isArray(v)) this.fail(key, 'expected a list of filter names');
    for (const f of v) if (typeof f !== 'string' || !filters.has(f)) this.fail(key, `no filter named ${JSON.stringify(f)}`);
  }

  private logger(key: string, v: unknown, filters: Set<string>): LoggerSpec {
    if (v === null) v = {};
    if (!isObj(v)) this.fail(key, 'expected a mapping (level, handlers, propagate)');
    const handlers = v['handlers'] ?? [];
    if (!Array.isArray(handlers) || handlers.some((h) => typeof h !== 'string')) this.fail(`${key}.handlers`, 'expected a list of handler names');
    const propagate = v['propagate'] ?? true;
    if (typeof propagate !== 'boolean') this.fail(`${key}.propagate`, 'expected true or false');
    this.filterRefs(`${key}.filters`, v['filters'], filters);
    const spec: LoggerSpec = { handlers: handlers as string[], propagate };
    const level = this.level(`${key}.level`, v['level']);
    if (level !== undefined) spec.level = level;
    return spec;
  }

  private formatter(name: string, v: unknown): FormatterSpec {
    const key = `formatters.${name}`;
    if (v === null) v = {};
    if (!isObj(v)) this.fail(key, 'expected a mapping (format, datefmt, style)');
    const cls = v['()'] ?? v['class'];
    if (typeof cls === 'string' && cls in JSON_FORMATTERS) return { kind: 'json', terse: JSON_FORMATTERS[cls] as boolean };
    if (typeof cls === 'string' && cls !== 'logging.Formatter') this.warn(`formatter class ${cls} is not supported; formatter '${name}' formats as logging.Formatter`);
    const style = v['style'] ?? '%';
    if (style !== '%' && style !== '{' && style !== '$') this.fail(`${key}.style`, "expected '%', '{' or '$'");
    const fmt = v['format'] ?? v['fmt'];
    if (fmt !== undefined && fmt !== null && typeof fmt !== 'string') this.fail(`${key}.format`, 'expected a string');
    const datefmt = v['datefmt'];
    if (datefmt !== undefined && datefmt !== null && typeof datefmt !== 'string') this.fail(`${key}.datefmt`, 'expected a strftime string');
    const defaults = v['defaults'];
    if (defaults !== undefined && defaults !== null && !isObj(defaults)) this.fail(`${key}.defaults`, 'expected a mapping');
    const dflt = { '%': '%(message)s', '{': '{message}', $: '${message}' }[style];
    const spec: FormatterSpec = { kind: 'text', format: typeof fmt === 'string' ? fmt : dflt, style, defaults: isObj(defaults) ? defaults : {} };
    if (typeof datefmt === 'string') spec.datefmt = datefmt;
    return spec;
  }

  private int(key: string, v: unknown, dflt: number, min = 0): number {
    if (v === undefined || v === null) return dflt;
    const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min) this.fail(key, `expected a whole number${min > 0 ? ` of at least ${min}` : ''}, got ${JSON.stringify(v)}`);
    return n;
  }

  private num(key: string, v: unknown, dflt: number): number {
    if (v === undefined || v === null) return dflt;
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) this.fail(key, `expected a positive number, got ${JSON.stringify(v)}`);
    return n;
  }

  private filename(key: string, v: unknown): string {
    if (typeof v !== 'string' || v === '') this.fail(key, 'expected the path of the log file');
    // Python opens it relative to the working directory (os.path.abspath).
    return resolve(v);
  }

  private encoding(key: string, v: unknown): BufferEncoding {
    if (v === undefined || v === null) return 'utf8';
    // Python's names for the encodings Node has: utf-8, UTF8, latin-1, iso-8859-1, us-ascii ...
    const n = typeof v === 'string' ? v.toLowerCase().replace(/[-_ ]/g, '') : '';
    const e = ({ utf8: 'utf8', u8: 'utf8', latin1: 'latin1', iso88591: 'latin1', l1: 'latin1', ascii: 'ascii', usascii: 'ascii', utf16le: 'utf16le' } as Record<string, BufferEncoding>)[n];
    if (!e) this.fail(key, `unsupported encoding ${JSON.stringify(v)} (utf-8, latin-1 or ascii)`);
    return e;
  }

  private mode(key: string, v: unknown): boolean {
    if (v === undefined || v === null || v === 'a') return true;
    if (v === 'w') return false;
    return this.fail(key, "expected 'a' (append) or 'w' (truncate)");
  }

  private handler(name: string, v: unknown, formatters: Map<string, FormatterSpec>, filters: Set<string>): HandlerSpec | undefined {
    const key = `handlers.${name}`;
    if (!isObj(v)) this.fail(key, 'expected a mapping with a class');
    const cls = v['class'] ?? v['()'];
    if (typeof cls !== 'string' || cls === '') this.fail(`${key}.class`, 'missing: every handler needs a class');
    const formatter = v['formatter'];
    if (formatter !== undefined && formatter !== null) {
      if (typeof formatter !== 'string' || !formatters.has(formatter)) this.fail(`${key}.formatter`, `no formatter named ${JSON.stringify(formatter)}`);
    }
    this.filterRefs(`${key}.filters`, v['filters'], filters);
    const common: HandlerCommon = { name };
    const level = this.level(`${key}.level`, v['level']);
    if (level !== undefined) common.level = level;
    if (typeof formatter === 'string') common.formatter = formatter;

    if (STREAM_CLASSES.has(cls)) {
      const s = v['stream'] ?? 'ext://sys.stderr';
      if (s !== 'ext://sys.stdout' && s !== 'ext://sys.stderr') this.fail(`${key}.stream`, 'expected ext://sys.stdout or ext://sys.stderr');
      return { ...common, kind: 'stream', stream: s === 'ext://sys.stdout' ? 'stdout' : 'stderr' };
    }
    if (FILE_CLASSES.has(cls)) {
      return {
        ...common,
        kind: 'file',
        filename: this.filename(`${key}.filename`, v['filename']),
        append: this.mode(`${key}.mode`, v['mode']),
        encoding: this.encoding(`${key}.encoding`, v['encoding']),
        watched: cls === 'logging.handlers.WatchedFileHandler',
      };
    }
    if (cls === 'logging.handlers.RotatingFileHandler') {
      const filename = this.filename(`${key}.filename`, v['filename']);
      const maxBytes = this.int(`${key}.maxBytes`, v['maxBytes'], 0);
      const backupCount = this.int(`${key}.backupCount`, v['backupCount'], 0);
      const append = this.mode(`${key}.mode`, v['mode']);
      const encoding = this.encoding(`${key}.encoding`, v['encoding']);
      // Python: "if either of maxBytes or backupCount is zero, rollover never occurs".
      if (maxBytes === 0 || backupCount === 0) return { ...common, kind: 'file', filename, append, encoding, watched: false };
      return { ...common, kind: 'rotating', filename, append, encoding, maxBytes, backupCount };
    }
    if (cls === 'logging.handlers.TimedRotatingFileHandler') {
      const whenRaw = v['when'] ?? 'h';
      const when = typeof whenRaw === 'string' ? whenRaw.toUpperCase() : '';
      if (!/^(S|M|H|D|MIDNIGHT|W[0-6])$/.test(when)) this.fail(`${key}.when`, `expected S, M, H, D, midnight or W0-W6, got ${JSON.stringify(whenRaw)}`);
      const interval = this.int(`${key}.interval`, v['interval'], 1, 1);
      if ((when === 'S' || when === 'M') && 60 % interval !== 0) this.fail(`${key}.interval`, `with when: ${when} the interval must divide 60, got ${interval}`);
      if (when === 'H' && 24 % interval !== 0) this.fail(`${key}.interval`, `with when: H the interval must divide 24, got ${interval}`);
      if (v['atTime'] !== undefined && v['atTime'] !== null) this.warn(`handler '${name}': atTime is not supported; rotation happens at the interval's boundary`);
      const utc = v['utc'] ?? false;
      if (typeof utc !== 'boolean') this.fail(`${key}.utc`, 'expected true or false');
      return {
        ...common,
        kind: 'timed',
        filename: this.filename(`${key}.filename`, v['filename']),
        encoding: this.encoding(`${key}.encoding`, v['encoding']),
        when: when as TimedWhen,
        interval,
        backupCount: this.int(`${key}.backupCount`, v['backupCount'], 0),
        utc,
      };
    }
    if (MEMORY_CLASSES.has(cls)) {
      const target = v['target'];
      if (target !== undefined && target !== null && typeof target !== 'string') this.fail(`${key}.target`, 'expected the name of a handler');
      if (target === name) this.fail(`${key}.target`, 'a handler cannot buffer into itself');
      const flushLevel = this.level(`${key}.flushLevel`, v['flushLevel'] ?? 40) ?? 'debug';
      const flushOnClose = v['flushOnClose'] ?? true;
      if (typeof flushOnClose !== 'boolean') this.fail(`${key}.flushOnClose`, 'expected true or false');
      const spec: HandlerSpec = {
        ...common,
        kind: 'memory',
        capacity: this.int(`${key}.capacity`, v['capacity'], NaN, 1),
        flushLevel,
        flushOnClose,
      };
      if (Number.isNaN(spec.capacity)) this.fail(`${key}.capacity`, 'missing: the number of records to buffer');
      if (typeof target === 'string') spec.target = target;
      if (cls.startsWith('synapse.')) spec.period = this.num(`${key}.period`, v['period'], 5);
      return spec;
    }
    if (JOURNAL_CLASSES.has(cls)) {
      const ident = v['SYSLOG_IDENTIFIER'] ?? 'axon';
      if (typeof ident !== 'string' || ident.includes('\n')) this.fail(`${key}.SYSLOG_IDENTIFIER`, 'expected a single-line string');
      const socket = v['axon_socket'] ?? JOURNAL_STDOUT_SOCKET;
      if (typeof socket !== 'string' || socket === '') this.fail(`${key}.axon_socket`, "expected the path of journald's stdout socket");
      return { ...common, kind: 'journal', identifier: ident, socket };
    }
    if (NULL_CLASSES.has(cls)) return { ...common, kind: 'null' };
    this.warn(`handler class ${cls} is not supported; handler '${name}' is dropped`);
    return undefined;
  }
}

/**
 * The files a log config writes to (rotated copies go beside them, so their
 * directories must be writable too for the rotating handlers).
 */
export function logConfigWritePaths(spec: LogConfigSpec): string[] {
  const out: string[] = [];
  for (const h of spec.handlers.values()) {
    if ((h.kind === 'file' || h.kind === 'rotating' || h.kind === 'timed') && !out.includes(h.filename)) out.push(h.filename);
  }
  return out;
}

/** The files the log config at `path` writes to; throws LogConfigError for a broken file. */
export function logConfigFilePaths(path: string): string[] {
  return logConfigWritePaths(loadLogConfig(path));
}
