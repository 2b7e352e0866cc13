/**
 * Python's logging.Formatter for Axon's records: the fields Synapse's
 * configs use, printf flags, asctime and datefmt, the other two styles,
 * Synapse's JSON formatters; and the record made from pino's JSON line.
 * Expected strings are what CPython 3.11 prints for the same record.
 */
import { describe, expect, it } from 'vitest';
import type { FormatterSpec } from '../../src/config/log-config.js';
import { createFormatter, strftime } from '../../src/logging/python-format.js';
import { LogRecord, syslogPriority } from '../../src/logging/record.js';

process.env.TZ = 'UTC';

// 2025-12-06 18:19:27.123 UTC
const TIME = Date.UTC(2025, 11, 6, 18, 19, 27, 123);

function rec(extra: Record<string, unknown> = {}): LogRecord {
  return new LogRecord({ level: 30, time: TIME, name: 'axon.storage', msg: 'hello', ...extra });
}

function text(format: string, more: Partial<Extract<FormatterSpec, { kind: 'text' }>> = {}): (r: LogRecord) => string {
  const f = createFormatter({ kind: 'text', format, style: '%', defaults: {}, ...more });
  return (r) => f.format(r);
}

describe('%-style fields', () => {
  it("Synapse's precise format: Python's default asctime, lineno 0, the request id or sentinel", () => {
    const f = text('%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s');
    expect(f(rec())).toBe('2025-12-06 18:19:27,123 - axon.storage - 0 - INFO - sentinel - hello');
    expect(f(rec({ request: 'a1b2c3', level: 40 }))).toBe('2025-12-06 18:19:27,123 - axon.storage - 0 - WARNING - a1b2c3 - hello');
  });

  it('width, alignment and precision flags', () => {
    expect(text('[%(levelname)-8s]')(rec())).toBe('[INFO    ]');
    expect(text('[%(levelname)8s]')(rec())).toBe('[    INFO]');
    expect(text('[%(name).4s]')(rec())).toBe('[axon]');
    expect(text('%(msecs)03d %(msecs)d %(levelno)d %(levelno)05d %(levelno)+d')(rec({ time: TIME - 120 }))).toBe('003 3 20 00020 +20');
    expect(text('%(created)f')(rec())).toBe('1765045167.123000');
    expect(text('%(created).2f|%(created)s')(rec())).toBe('1765045167.12|1765045167.123');
    expect(text('%(levelno)x %(levelno)#o %(levelno)5.1e %(levelno)r %(name)r 100%%')(rec())).toBe("14 0o24 2.0e+01 20 'axon.storage' 100%");
  });

  it('the fields Axon cannot know get what Python prints for an unknown caller; the others are this process', () => {
    const f = text('%(lineno)d|%(funcName)s|%(module)s|%(pathname)s|%(process)d|%(processName)s|%(threadName)s|%(thread)d');
    expect(f(rec())).toBe(`0|(unknown function)|storage|(unknown file)|${process.pid}|MainProcess|MainThread|0`);
  });

  it('each level as Python names it', () => {
    const f = text('%(levelname)s %(levelno)s');
    expect([20, 30, 40, 50, 60].map((level) => f(rec({ level })))).toEqual(['DEBUG 10', 'INFO 20', 'WARNING 30', 'ERROR 40', 'CRITICAL 50']);
    expect([20, 30, 40, 50, 60].map(syslogPriority)).toEqual([7, 6, 4, 3, 2]);
  });

  it('the bound object reads as key=value in %(message)s, an error as its message, its stack after the line', () => {
    const f = text('%(levelname)s %(message)s');
    expect(f(rec({ user_id: '@alice:example.org', count: 3, ok: true, note: 'two words', list: [1, 2] }))).toBe(
      'INFO hello user_id=@alice:example.org count=3 ok=true note="two words" list=[1,2]',
    );
    const err = { type: 'Error', message: 'connection refused', stack: 'Error: connection refused\n    at connect (db.js:1:1)' };
    expect(f(rec({ level: 50, err }))).toBe('ERROR hello err="connection refused"\nError: connection refused\n    at connect (db.js:1:1)');
    expect(f(new LogRecord({ level: 30, time: TIME, msg: '', applied: ['0001'] }))).toBe('INFO applied=["0001"]');
  });

  it('fields from the bound object and from defaults; an unknown one prints -', () => {
    const f = text('%(user_id)s %(server_name)s %(nothing)s', { defaults: { server_name: 'example.org' } });
    expect(f(rec({ user_id: '@a:b' }))).toBe('@a:b example.org -');
  });

  it("no formatter is Python's default, the message alone", () => {
    expect(createFormatter(undefined).format(rec({ x: 1 }))).toBe('hello x=1');
  });
});

describe('time', () => {
  it('datefmt is strftime, without milliseconds', () => {
    expect(text('%(asctime)s', { datefmt: '%Y-%m-%dT%H:%M:%S%z' })(rec())).toBe('2025-12-06T18:19:27+0000');
    expect(text('%(asctime)s', { datefmt: '%d/%b/%Y:%H:%M:%S %Z' })(rec())).toBe('06/Dec/2025:18:19:27 UTC');
  });

  it('strftime in the C locale', () => {
    const d = new Date(TIME);
    expect(strftime('%a %A %b %B %d %e %H %I %j %m %M %p %S %y %Y %% %w %u', d)).toBe('Sat Saturday Dec December 06  6 18 06 340 12 19 PM 27 25 2025 % 6 6');
    expect(strftime('%c|%x|%X|%F %T', d)).toBe('Sat Dec  6 18:19:27 2025|12/06/25|18:19:27|2025-12-06 18:19:27');
  });
});

describe('the other styles', () => {
  it('{ style: str.format fields and format specs', () => {
    const f = createFormatter({ kind: 'text', format: '{asctime} {levelname:<8}|{levelno:>4}|{name!r}|{msecs:03.0f}|{{x}} {message}', style: '{', defaults: {} });
    expect(f.format(rec())).toBe("2025-12-06 18:19:27,123 INFO    |  20|'axon.storage'|123|{x} hello");
  });

  it('$ style: string.Template', () => {
    const f = createFormatter({ kind: 'text', format: '$levelname ${name}: $message $$', style: '$', defaults: {} });
    expect(f.format(rec())).toBe('INFO axon.storage: hello $');
  });
});

describe("Synapse's JSON formatters", () => {
  it('TerseJsonFormatter: log, namespace, level, time, then the request and the bound object', () => {
    const f = createFormatter({ kind: 'json', terse: true });
    expect(JSON.parse(f.format(rec({ request: 'r1', user_id: '@a:b' })))).toEqual({
      log: 'hello',
      namespace: 'axon.storage',
      level: 'INFO',
      time: 1765045167.12,
      request: 'r1',
      user_id: '@a:b',
    });
  });

  it('JsonFormatter: no time; an error as exc_type and exc_value', () => {
    const f = createFormatter({ kind: 'json', terse: false });
    const out = JSON.parse(f.format(rec({ level: 50, err: { type: 'TypeError', message: 'bad', stack: 'TypeError: bad\n  at x' } })));
    expect(out).toEqual({ log: 'hello', namespace: 'axon.storage', level: 'ERROR', request: 'sentinel', exc_type: 'TypeError', exc_value: 'bad' });
  });
});

describe('records from pino lines', () => {
  it('parses once, and keeps pino own keys out of the bound object', () => {
    const r = LogRecord.parse('{"level":40,"time":1765045167123,"name":"axon.http","request":"abc","msg":"slow","ms":12}\n');
    expect(r).toMatchObject({ level: 40, levelname: 'WARNING', name: 'axon.http', request: 'abc', msg: 'slow', extras: { ms: 12 } });
    expect(LogRecord.parse('not json')).toBeUndefined();
  });
});
