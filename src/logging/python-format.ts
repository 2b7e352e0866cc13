/**
 * Python's logging.Formatter for Axon's records: `%`-style format strings
 * with printf flags (`%(levelname)-8s`, `%(msecs)03d`), `{` and `$` styles,
 * `datefmt` as strftime, and Synapse's JSON formatters. Fields Axon cannot
 * know get Python's own values for an unknown caller (`lineno` 0,
 * `funcName` "(unknown function)").
 */
import { threadId } from 'node:worker_threads';
import type { FormatterSpec } from '../config/log-config.js';
import { LogRecord } from './record.js';

export interface Formatter {
  format(rec: LogRecord): string;
}

const START = Date.now();
/** Python prints these as floats (`1765045167.123`, `123.0`). */
const FLOAT_FIELDS = new Set(['created', 'msecs', 'relativeCreated']);

function field(rec: LogRecord, key: string, asctime: () => string, defaults: Record<string, unknown>): unknown {
  switch (key) {
    case 'asctime':
      return asctime();
    case 'name':
      return rec.name;
    case 'levelname':
      return rec.levelname;
    case 'levelno':
      return rec.levelno;
    case 'message':
      return rec.message;
    case 'msg':
      return rec.msg;
    case 'request':
      return rec.request;
    case 'lineno':
      return 0;
    case 'module':
      return rec.name.slice(rec.name.lastIndexOf('.') + 1);
    case 'funcName':
      return '(unknown function)';
    case 'pathname':
    case 'filename':
      return '(unknown file)';
    case 'process':
      return process.pid;
    case 'processName':
      return 'MainProcess';
    case 'thread':
      return threadId;
    case 'threadName':
      return 'MainThread';
    case 'created':
      return rec.time / 1000;
    case 'msecs':
      return rec.time % 1000;
    case 'relativeCreated':
      return rec.time - START;
    case 'exc_text':
      return rec.excText ?? null;
    case 'exc_info':
      return rec.excType ? `${rec.excType}: ${rec.excValue ?? ''}` : null;
    case 'args':
      return '()';
    case 'stack_info':
    case 'taskName':
      return null;
    default:
      if (key in rec.extras) return rec.extras[key];
      if (key in defaults) return defaults[key];
      return '-';
  }
}

function pyStr(v: unknown, key: string): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return FLOAT_FIELDS.has(key) && Number.isInteger(v) ? `${v}.0` : String(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v) ?? String(v);
}

function pyRepr(v: unknown, key: string): string {
  return typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : pyStr(v, key);
}

function toNumber(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : Number(String(v));
  return Number.isNaN(n) ? 0 : n;
}

/** JavaScript's 1.5e+0 as Python's 1.5e+00. */
function pyExp(n: number, prec: number): string {
  return n.toExponential(prec).replace(/e([+-])(\d)$/, 'e$10$2');
}

function pyGeneral(n: number, prec: number, alt: boolean): string {
  const p = prec === 0 ? 1 : prec;
  if (n === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  let s = exp < -4 || exp >= p ? pyExp(n, p - 1) : n.toFixed(Math.max(0, p - 1 - exp));
  if (!alt) s = s.replace(/\.?0+(e|$)/, '$1').replace(/(\.\d*?)0+(e|$)/, '$1$2');
  return s;
}

interface NumSpec {
  sign: '' | '+' | ' ' | '-';
  alt: boolean;
  type: string;
  prec: number | undefined;
}

/** The digits of a number for a printf / format-spec type, without sign and padding. */
function digits(n: number, s: NumSpec): string {
  const a = Math.abs(n);
  switch (s.type) {
    case 'd':
    case 'i':
    case 'u':
    case 'n':
      return Math.trunc(a).toString();
    case 'f':
    case 'F':
      return a.toFixed(s.prec ?? 6);
    case 'e':
      return pyExp(a, s.prec ?? 6);
    case 'E':
      return pyExp(a, s.prec ?? 6).toUpperCase();
    case 'g':
      return pyGeneral(a, s.prec ?? 6, s.alt);
    case 'G':
      return pyGeneral(a, s.prec ?? 6, s.alt).toUpperCase();
    case 'x':
      return (s.alt ? '0x' : '') + Math.trunc(a).toString(16);
    case 'X':
      return (s.alt ? '0X' : '') + Math.trunc(a).toString(16).toUpperCase();
    case 'o':
      return (s.alt ? '0o' : '') + Math.trunc(a).toString(8);
    case 'b':
      return (s.alt ? '0b' : '') + Math.trunc(a).toString(2);
    case '%':
      return `${(a * 100).toFixed(s.prec ?? 6)}%`;
    default:
      return String(a);
  }
}

function signOf(n: number, sign: NumSpec['sign']): string {
  if (n < 0 || Object.is(n, -0)) return '-';
  return sign === '+' ? '+' : sign === ' ' ? ' ' : '';
}

const NUMERIC = new Set(['d', 'i', 'u', 'n', 'f', 'F', 'e', 'E', 'g', 'G', 'x', 'X', 'o', 'b', '%']);

// ---------------------------------------------------------------------------
// % style

type Part = string | ((rec: LogRecord, asctime: () => string) => string);

/** A format string as literal text and, for each match of `re`, the part `field` makes of it. */
function compile(format: string, re: RegExp, field: (m: RegExpMatchArray) => Part): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of format.matchAll(re)) {
    if ((m.index as number) > last) parts.push(format.slice(last, m.index));
    last = (m.index as number) + m[0].length;
    parts.push(field(m));
  }
  if (last < format.length) parts.push(format.slice(last));
  return parts;
}

const PERCENT = /%\((\w+)\)([#0\- +]*)(\d+)?(?:\.(\d+))?([diouxXeEfFgGcrsa%])|%%/g;

function percentParts(format: string, defaults: Record<string, unknown>): Part[] {
  return compile(format, PERCENT, (m) => {
    if (m[0] === '%%') return '%';
    const key = m[1] as string;
    const flags = m[2] ?? '';
    const width = m[3] !== undefined ? Number(m[3]) : 0;
    const prec = m[4] !== undefined ? Number(m[4]) : undefined;
    const type = m[5] as string;
    const left = flags.includes('-');
    const zero = flags.includes('0') && !left;
    const spec: NumSpec = { sign: flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : '', alt: flags.includes('#'), type, prec };
    return (rec, asctime) => {
      const v = field(rec, key, asctime, defaults);
      let s: string;
      if (NUMERIC.has(type) && type !== '%') {
        const n = toNumber(v);
        const sign = signOf(n, spec.sign);
        const body = digits(n, spec);
        if (zero && sign.length + body.length < width) return sign + body.padStart(width - sign.length, '0');
        s = sign + body;
      } else if (type === 'c') {
        s = typeof v === 'number' ? String.fromCodePoint(v) : pyStr(v, key).slice(0, 1);
      } else {
        s = type === 'r' || type === 'a' ? pyRepr(v, key) : pyStr(v, key);
        if (prec !== undefined) s = s.slice(0, prec);
      }
      return left ? s.padEnd(width) : s.padStart(width);
    };
  });
}

// ---------------------------------------------------------------------------
// { style (str.format) and $ style (string.Template)

const SPEC = /^(?:(.)?([<>=^]))?([+\- ])?(#)?(0)?(\d+)?[,_]?(?:\.(\d+))?([bcdeEfFgGnosxX%])?$/s;

function applyFormatSpec(v: unknown, key: string, specText: string): string {
  const m = SPEC.exec(specText);
  if (!m) return pyStr(v, key);
  const [, fill0, align0, sign0, alt, zero, width0, prec0, type0] = m;
  const width = width0 !== undefined ? Number(width0) : 0;
  const prec = prec0 !== undefined ? Number(prec0) : undefined;
  const numeric = typeof v === 'number' && type0 !== 's';
  const type = type0 ?? (numeric ? (Number.isInteger(v) ? 'd' : 'g') : 's');
  let fill = fill0 ?? ' ';
  let align = align0 ?? (numeric ? '>' : '<');
  if (zero && align0 === undefined) {
    fill = '0';
    align = '=';
  }
  let sign = '';
  let body: string;
  if (NUMERIC.has(type)) {
    const n = toNumber(v);
    sign = signOf(n, (sign0 as NumSpec['sign']) ?? '');
    body = digits(n, { sign: '', alt: alt === '#', type, prec: prec ?? (type === 'g' && !type0 ? 12 : undefined) });
  } else {
    body = pyStr(v, key);
    if (prec !== undefined) body = body.slice(0, prec);
  }
  const len = sign.length + body.length;
  if (len >= width) return sign + body;
  const pad = fill.repeat(width - len);
  switch (align) {
    case '<':
      return sign + body + pad;
    case '^': {
      const half = Math.floor((width - len) / 2);
      return fill.repeat(half) + sign + body + fill.repeat(width - len - half);
    }
    case '=':
      return sign + pad + body;
    default:
      return pad + sign + body;
  }
}

const BRACE = /\{\{|\}\}|\{(\w+)(?:!([rsa]))?(?::([^{}]*))?\}/g;

function braceParts(format: string, defaults: Record<string, unknown>): Part[] {
  return compile(format, BRACE, (m) => {
    if (m[0] === '{{' || m[0] === '}}') return m[0][0] as string;
    const key = m[1] as string;
    const conv = m[2];
    const spec = m[3] ?? '';
    return (rec, asctime) => {
      let v = field(rec, key, asctime, defaults);
      if (conv === 'r' || conv === 'a') v = pyRepr(v, key);
      else if (conv === 's') v = pyStr(v, key);
      return applyFormatSpec(v, key, spec);
    };
  });
}

const DOLLAR = /\$\$|\$(\w+)|\$\{(\w+)\}/g;

function dollarParts(format: string, defaults: Record<string, unknown>): Part[] {
  return compile(format, DOLLAR, (m) => {
    if (m[0] === '$$') return '$';
    const key = (m[1] ?? m[2]) as string;
    return (rec, asctime) => pyStr(field(rec, key, asctime, defaults), key);
  });
}

// ---------------------------------------------------------------------------
// time

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const p2 = (n: number) => (n < 10 ? `0${n}` : String(n));
const p3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));

const zoneNames = new Map<number, string>();
function zoneName(d: Date): string {
  const off = d.getTimezoneOffset();
  let z = zoneNames.get(off);
  if (z === undefined) {
    z = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
    zoneNames.set(off, z);
  }
  return z;
}

/** C's strftime in the C locale, as Python's time.strftime; local time unless `utc`. */
export function strftime(fmt: string, date: Date, utc = false): string {
  const Y = utc ? date.getUTCFullYear() : date.getFullYear();
  const mo = utc ? date.getUTCMonth() : date.getMonth();
  const d = utc ? date.getUTCDate() : date.getDate();
  const H = utc ? date.getUTCHours() : date.getHours();
  const Mi = utc ? date.getUTCMinutes() : date.getMinutes();
  const S = utc ? date.getUTCSeconds() : date.getSeconds();
  const wd = utc ? date.getUTCDay() : date.getDay();
  const yday = Math.floor((Date.UTC(Y, mo, d) - Date.UTC(Y, 0, 1)) / 86_400_000) + 1;
  const off = utc ? 0 : -date.getTimezoneOffset();
  const week = (firstDay: number) => Math.floor((yday - 1 + 7 - ((wd - firstDay + 7) % 7)) / 7);
  return fmt.replace(/%([aAbBcdeFHIjmMpSTuUwWxXyYzZ%sf])/g, (_, c: string) => {
    switch (c) {
      case 'a':
        return DAYS[wd]!.slice(0, 3);
      case 'A':
        return DAYS[wd]!;
      case 'b':
        return MONTHS[mo]!.slice(0, 3);
      case 'B':
        return MONTHS[mo]!;
      case 'c':
        return `${DAYS[wd]!.slice(0, 3)} ${MONTHS[mo]!.slice(0, 3)} ${String(d).padStart(2)} ${p2(H)}:${p2(Mi)}:${p2(S)} ${Y}`;
      case 'd':
        return p2(d);
      case 'e':
        return String(d).padStart(2);
      case 'F':
        return `${Y}-${p2(mo + 1)}-${p2(d)}`;
      case 'H':
        return p2(H);
      case 'I':
        return p2(H % 12 === 0 ? 12 : H % 12);
      case 'j':
        return p3(yday);
      case 'm':
        return p2(mo + 1);
      case 'M':
        return p2(Mi);
      case 'p':
        return H < 12 ? 'AM' : 'PM';
      case 'S':
        return p2(S);
      case 'T':
      case 'X':
        return `${p2(H)}:${p2(Mi)}:${p2(S)}`;
      case 'u':
        return String(wd === 0 ? 7 : wd);
      case 'U':
        return p2(week(0));
      case 'w':
        return String(wd);
      case 'W':
        return p2(week(1));
      case 'x':
        return `${p2(mo + 1)}/${p2(d)}/${p2(Y % 100)}`;
      case 'y':
        return p2(Y % 100);
      case 'Y':
        return String(Y);
      case 'z':
        return `${off < 0 ? '-' : '+'}${p2(Math.floor(Math.abs(off) / 60))}${p2(Math.abs(off) % 60)}`;
      case 'Z':
        return utc ? 'UTC' : zoneName(date);
      case 's':
        return String(Math.floor(date.getTime() / 1000));
      case 'f':
        return `${p3(date.getMilliseconds())}000`;
      default:
        return '%';
    }
  });
}

/** `%(asctime)s`: Python's `2026-12-06 18:39:27,123` (local time), or strftime(datefmt) without milliseconds. */
function asctimeOf(datefmt: string | undefined): (time: number) => string {
  let lastSec = NaN;
  let lastText = '';
  return (time) => {
    const sec = Math.floor(time / 1000);
    if (sec !== lastSec) {
      lastSec = sec;
      lastText = strftime(datefmt ?? '%Y-%m-%d %H:%M:%S', new Date(sec * 1000));
    }
    return datefmt === undefined ? `${lastText},${p3(time % 1000)}` : lastText;
  };
}

// ---------------------------------------------------------------------------

class TextFormatter implements Formatter {
  private readonly parts: Part[];
  private readonly asctime: (time: number) => string;

  constructor(spec: Extract<FormatterSpec, { kind: 'text' }>) {
    const build = spec.style === '{' ? braceParts : spec.style === '$' ? dollarParts : percentParts;
    this.parts = build(spec.format, spec.defaults);
    this.asctime = asctimeOf(spec.datefmt);
  }

  format(rec: LogRecord): string {
    let s = '';
    const asctime = () => this.asctime(rec.time);
    for (const p of this.parts) s += typeof p === 'string' ? p : p(rec, asctime);
    // Python appends the traceback after the formatted line.
    if (rec.excText !== undefined) s += `${s.endsWith('\n') ? '' : '\n'}${rec.excText}`;
    return s;
  }
}

/** synapse.logging.JsonFormatter / TerseJsonFormatter: `{"log","namespace","level"[,"time"],"request",...}`. */
class JsonFormatter implements Formatter {
  constructor(private readonly terse: boolean) {}

  format(rec: LogRecord): string {
    const event: Record<string, unknown> = { log: rec.msg, namespace: rec.name, level: rec.levelname };
    if (this.terse) event['time'] = Math.round(rec.time / 10) / 100;
    event['request'] = rec.request;
    for (const [k, v] of Object.entries(rec.extras)) {
      if (rec.excText !== undefined && v !== null && typeof v === 'object' && (v as { stack?: unknown }).stack === rec.excText) continue;
      event[k] = v;
    }
    if (rec.excType !== undefined) {
      event['exc_type'] = rec.excType;
      event['exc_value'] = rec.excValue ?? '';
    }
    return JSON.stringify(event);
  }
}

/** A formatter for a spec; none is Python's default, `%(message)s`. */
export function createFormatter(spec: FormatterSpec | undefined): Formatter {
  if (spec?.kind === 'json') return new JsonFormatter(spec.terse);
  return new TextFormatter(spec ?? { kind: 'text', format: '%(message)s', style: '%', defaults: {} });
}

/** A record formatted by `f`, computed once per record and formatter. */
export function formatOnce(f: Formatter, rec: LogRecord): string {
  let s = rec.formatted.get(f);
  if (s === undefined) {
    s = f.format(rec);
    rec.formatted.set(f, s);
  }
  return s;
}
