/**
 * One log line as Python's logging sees it: a LogRecord made from the JSON
 * line pino wrote (parsed once, then shared by every handler).
 */
import { isJsonObject } from '../core/json-values.js';

/** pino level number → Python levelno and levelname. */
const PY_LEVELS: Record<number, [number, string]> = {
  10: [5, 'TRACE'],
  20: [10, 'DEBUG'],
  30: [20, 'INFO'],
  40: [30, 'WARNING'],
  50: [40, 'ERROR'],
  60: [50, 'CRITICAL'],
};

export const PINO_LEVEL_VALUES: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

/** Syslog priority per pino level, as Python's JournalHandler maps levels. */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2; // CRITICAL
  if (level >= 50) return 3; // ERROR
  if (level >= 40) return 4; // WARNING
  if (level >= 30) return 6; // INFO
  return 7; // DEBUG, TRACE
}

/** Keys of pino's line that are the record itself, not the bound object. */
const OWN_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'request', 'v']);

interface ErrorLike {
  type?: string;
  message?: string;
  stack?: string;
}

function isErrorLike(v: unknown): v is ErrorLike {
  return v !== null && typeof v === 'object' && typeof (v as ErrorLike).message === 'string' && typeof (v as ErrorLike).stack === 'string';
}

export class LogRecord {
  readonly level: number;
  readonly levelno: number;
  readonly levelname: string;
  /** Milliseconds since the epoch. */
  readonly time: number;
  readonly name: string;
  readonly msg: string;
  /** The request id; Synapse prints `sentinel` outside a request. */
  readonly request: string;
  /** The bound object: everything pino wrote that is not the record itself. */
  readonly extras: Record<string, unknown>;
  /** The first error object's stack, printed after the line as Python prints a traceback. */
  readonly excText: string | undefined;
  readonly excType: string | undefined;
  readonly excValue: string | undefined;
  private messageText: string | undefined;
  /** Formatted output per formatter, so a line going to two handlers is formatted once. */
  readonly formatted = new Map<object, string>();

  constructor(obj: Record<string, unknown>) {
    const level = typeof obj['level'] === 'number' ? obj['level'] : 30;
    this.level = level;
    const py = PY_LEVELS[level] ?? [Math.max(0, level - 10), `Level ${Math.max(0, level - 10)}`];
    this.levelno = py[0];
    this.levelname = py[1];
    this.time = typeof obj['time'] === 'number' ? obj['time'] : Date.now();
    this.name = typeof obj['name'] === 'string' ? obj['name'] : 'axon';
    this.msg = typeof obj['msg'] === 'string' ? obj['msg'] : '';
    const request = obj['request'];
    this.request = typeof request === 'string' && request !== '' ? request : 'sentinel';
    const extras: Record<string, unknown> = {};
    let exc: ErrorLike | undefined;
    for (const [k, v] of Object.entries(obj)) {
      if (OWN_KEYS.has(k)) continue;
      extras[k] = v;
      if (!exc && isErrorLike(v)) exc = v;
    }
    this.extras = extras;
    this.excText = exc?.stack;
    this.excType = exc ? (exc.type ?? 'Error') : undefined;
    this.excValue = exc?.message;
  }

  /** A JSON line from pino; undefined if it is not one. */
  static parse(line: string): LogRecord | undefined {
    try {
      const obj: unknown = JSON.parse(line);
      return isJsonObject(obj) ? new LogRecord(obj) : undefined;
    } catch {
      return undefined;
    }
  }

  /** `%(message)s`: the message, then the bound object as ` key=value` pairs (an error as its message). */
  get message(): string {
    if (this.messageText !== undefined) return this.messageText;
    let s = this.msg;
    for (const [k, v] of Object.entries(this.extras)) {
      if (v === undefined) continue;
      s += `${s === '' ? '' : ' '}${k}=${renderValue(isErrorLike(v) ? v.message : v)}`;
    }
    this.messageText = s;
    return s;
  }
}

function renderValue(v: unknown): string {
  if (typeof v === 'string') return v !== '' && !/[\s"=\\]/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v) ?? String(v);
}
