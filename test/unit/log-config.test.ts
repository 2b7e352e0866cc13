/**
 * Reading Python logging configs (dictConfig YAML) as Synapse's deployments
 * write them: Synapse's generated one, Debian's, a journald one, the loader
 * fixture; and the start-up errors a broken one gives.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LogConfigError, loadLogConfig, logConfigFilePaths, parseLogConfig, toPinoLevel } from '../../src/config/log-config.js';
import { ConfigError } from '../../src/config/errors.js';
import { configuredAncestors, effectiveLevel, namesOf } from '../../src/logging/names.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(HERE, 'fixtures', 'log');

function errorOf(text: string): LogConfigError {
  try {
    parseLogConfig(text, '/etc/axon/log.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(LogConfigError);
    expect(err).toBeInstanceOf(ConfigError);
    return err as LogConfigError;
  }
  throw new Error('no error');
}

describe('real-world log configs', () => {
  it("Synapse's generated config: root → buffer → TimedRotatingFileHandler at midnight, 3 kept", () => {
    const spec = loadLogConfig(join(FIXTURES, 'synapse-generated.log.config'));
    expect(spec.root).toEqual({ level: 'info', handlers: ['buffer'], propagate: true });
    expect(spec.handlers.get('buffer')).toEqual({
      name: 'buffer',
      kind: 'memory',
      target: 'file',
      capacity: 10,
      flushLevel: 'warn',
      flushOnClose: true,
      period: 5,
    });
    expect(spec.handlers.get('file')).toEqual({
      name: 'file',
      kind: 'timed',
      formatter: 'precise',
      filename: '/data/homeserver.log',
      encoding: 'utf8',
      when: 'MIDNIGHT',
      interval: 1,
      backupCount: 3,
      utc: false,
    });
    expect(spec.handlers.get('console')).toMatchObject({ kind: 'stream', stream: 'stderr' }); // Python's default stream
    expect(spec.loggers.get('synapse.storage.SQL')).toEqual({ level: 'info', handlers: [], propagate: true });
    expect(spec.formatters.get('precise')).toMatchObject({
      kind: 'text',
      style: '%',
      format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s',
    });
    expect(spec.warnings).toEqual([]);
    expect(logConfigFilePaths(join(FIXTURES, 'synapse-generated.log.config'))).toEqual(['/data/homeserver.log']);
  });

  it("Debian's log.yaml: RotatingFileHandler 100 MiB × 10 and a console at WARN; the context filter accepted", () => {
    const spec = loadLogConfig(join(FIXTURES, 'debian.log.yaml'));
    expect(spec.handlers.get('file')).toMatchObject({
      kind: 'rotating',
      filename: '/var/log/matrix-synapse/homeserver.log',
      maxBytes: 104857600,
      backupCount: 10,
      append: true,
    });
    expect(spec.handlers.get('console')).toMatchObject({ kind: 'stream', stream: 'stderr', level: 'warn' });
    expect(spec.root.handlers).toEqual(['file', 'console']);
    expect(spec.loggers.get('synapse')?.level).toBe('info');
    expect(spec.warnings).toEqual([]);
  });

  it('a journald config: the identifier, and the socket sd_journal_stream_fd uses', () => {
    const spec = loadLogConfig(join(FIXTURES, 'journal.log.yaml'));
    expect(spec.handlers.get('journal')).toEqual({
      name: 'journal',
      kind: 'journal',
      formatter: 'journal_fmt',
      identifier: 'synapse',
      socket: '/run/systemd/journal/stdout',
    });
    expect(spec.loggers.get('synapse.storage.SQL')?.level).toBe('warn');
  });

  it("the loader's fixture (synapse at WARNING over a root at INFO)", () => {
    const spec = loadLogConfig(join(HERE, '..', 'config', 'fixtures', 'with-log-config', 'log.yaml'));
    const levels = new Map([...spec.loggers].flatMap(([n, l]) => (l.level ? [[n, l.level] as const] : [])));
    expect(effectiveLevel('axon.http', levels, spec.root.level!)).toBe('warn');
    expect(effectiveLevel('axon.storage.sql', levels, spec.root.level!)).toBe('info');
  });
});

describe('what Python accepts and refuses', () => {
  it('levels by name or number, case-insensitively; a number shows records at or above it', () => {
    expect(toPinoLevel('WARN')).toBe('warn');
    expect(toPinoLevel('critical')).toBe('fatal');
    expect(toPinoLevel(30)).toBe('warn');
    expect(toPinoLevel(15)).toBe('info');
    expect(toPinoLevel('10')).toBe('debug');
    expect(toPinoLevel(60)).toBe('silent');
    expect(toPinoLevel('loud')).toBeUndefined();
  });

  it('the root logger is at WARNING when the file does not set it, as in Python', () => {
    const spec = parseLogConfig('version: 1\nroot:\n  handlers: []\n', 'x');
    expect(spec.root.level).toBe('warn');
    expect(parseLogConfig('version: 1\n', 'x').root.level).toBe('warn');
    expect(parseLogConfig('version: 1\nroot: {level: NOTSET}\n', 'x').root.level).toBe('debug');
  });

  it('YAML 1.1 as PyYAML reads it: propagate: no', () => {
    const spec = parseLogConfig('version: 1\nloggers:\n  synapse.access:\n    propagate: no\n', 'x');
    expect(spec.loggers.get('synapse.access')).toEqual({ handlers: [], propagate: false });
  });

  it('a RotatingFileHandler with backupCount 0 never rotates (Python), so it is a plain file', () => {
    const spec = parseLogConfig('version: 1\nhandlers:\n  f: {class: logging.handlers.RotatingFileHandler, filename: /tmp/x.log, maxBytes: 100}\n', 'x');
    expect(spec.handlers.get('f')).toMatchObject({ kind: 'file', watched: false });
  });

  it('an unknown handler class is dropped with one warning naming it; a logger using it still works', () => {
    const spec = parseLogConfig(
      'version: 1\nhandlers:\n  remote: {class: synapse.logging.RemoteHandler, host: 10.0.0.1, port: 9000}\n  c: {class: logging.StreamHandler}\nroot: {level: INFO, handlers: [remote, c]}\nloggers:\n  synapse: {handlers: [remote]}\n',
      'x',
    );
    expect(spec.warnings).toEqual(["handler class synapse.logging.RemoteHandler is not supported; handler 'remote' is dropped"]);
    expect(spec.root.handlers).toEqual(['c']);
    expect(spec.loggers.get('synapse')?.handlers).toEqual([]);
  });

  it("Synapse's JSON formatters are known; other formatter classes format as logging.Formatter, with a warning", () => {
    const spec = parseLogConfig(
      "version: 1\nformatters:\n  j: {class: synapse.logging.TerseJsonFormatter}\n  k: {(): synapse.logging.JsonFormatter}\n  o: {class: my.Formatter, format: '%(message)s'}\n",
      'x',
    );
    expect(spec.formatters.get('j')).toEqual({ kind: 'json', terse: true });
    expect(spec.formatters.get('k')).toEqual({ kind: 'json', terse: false });
    expect(spec.warnings).toEqual(["formatter class my.Formatter is not supported; formatter 'o' formats as logging.Formatter"]);
  });

  it.each([
    ['', 'log_config /etc/axon/log.yaml: not a Python logging dictionary'],
    ['version: 1\nhandlers: [a, b\n', 'log_config /etc/axon/log.yaml: not valid YAML'],
    ['formatters: {}\n', 'log_config /etc/axon/log.yaml: version: missing'],
    ['version: 2\n', 'version: unsupported version 2'],
    ['version: 1\nroot: {level: LOUD}\n', 'root.level: unknown level "LOUD"'],
    ['version: 1\nroot: {handlers: [nowhere]}\n', "root.handlers: no handler named 'nowhere'"],
    ['version: 1\nhandlers:\n  f: {class: logging.FileHandler}\n', 'handlers.f.filename: expected the path of the log file'],
    ['version: 1\nhandlers:\n  c: {class: logging.StreamHandler, formatter: fancy}\n', 'handlers.c.formatter: no formatter named "fancy"'],
    ['version: 1\nhandlers:\n  c: {class: logging.StreamHandler, stream: ext://sys.stdin}\n', 'handlers.c.stream: expected ext://sys.stdout or ext://sys.stderr'],
    ['version: 1\nhandlers:\n  b: {class: logging.handlers.MemoryHandler, capacity: 10, target: gone}\n', "handlers.b.target: no handler named 'gone'"],
    ['version: 1\nhandlers:\n  b: {class: logging.handlers.MemoryHandler}\n', 'handlers.b.capacity: missing'],
    [
      'version: 1\nhandlers:\n  t: {class: logging.handlers.TimedRotatingFileHandler, filename: /tmp/t, when: fortnightly}\n',
      'handlers.t.when: expected S, M, H, D, midnight or W0-W6',
    ],
    [
      'version: 1\nhandlers:\n  t: {class: logging.handlers.TimedRotatingFileHandler, filename: /tmp/t, when: S, interval: 7}\n',
      'handlers.t.interval: with when: S the interval must divide 60',
    ],
    ['version: 1\nloggers:\n  synapse: {propagate: sometimes}\n', 'loggers.synapse.propagate: expected true or false'],
    ['version: 1\nhandlers:\n  c: {class: logging.StreamHandler, filters: [ctx]}\n', 'handlers.c.filters: no filter named "ctx"'],
  ])('refuses %j with one line naming the file and the key', (text, message) => {
    const err = errorOf(text);
    expect(err.message).toContain(message);
    expect(err.message).not.toContain('\n');
  });

  it('names the file when it is missing or unreadable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-logcfg-'));
    expect(() => loadLogConfig(join(dir, 'nope.yaml'))).toThrow(`log_config ${join(dir, 'nope.yaml')}: file not found`);
    writeFileSync(join(dir, 'ok.yaml'), 'version: 1\n');
    expect(loadLogConfig(join(dir, 'ok.yaml')).handlers.size).toBe(0);
  });
});

describe("Synapse's logger names for Axon's loggers", () => {
  it('each Axon logger answers to its Synapse names, and unlisted children map through their parent', () => {
    expect(namesOf('axon.storage.sql')).toEqual(['axon.storage.sql', 'synapse.storage.SQL']);
    expect(namesOf('axon.access.http.8008')).toEqual(['axon.access.http.8008', 'synapse.access.http.8008']);
    expect(namesOf('axon.access.https.8448')).toEqual(['axon.access.https.8448', 'synapse.access.https.8448']);
    expect(namesOf('axon.media')).toEqual(['axon.media', 'synapse.media', 'synapse.rest.media']);
    expect(namesOf('axon')).toEqual(['axon', 'synapse']);
  });

  it("Python's inheritance: the nearest configured ancestor's level; the deepest name wins; axon.* before synapse.* of the same depth", () => {
    const levels = new Map([
      ['synapse', 'info'],
      ['synapse.storage', 'warn'],
      ['synapse.storage.SQL', 'debug'],
      ['synapse.access.http.8008', 'warn'],
      ['axon.storage', 'error'],
      ['synapse.handlers', 'debug'],
    ]);
    const at = (n: string) => effectiveLevel(n, levels, 'error');
    expect(at('axon.storage.sql')).toBe('debug');
    expect(at('axon.storage')).toBe('error'); // axon.storage beats synapse.storage
    expect(at('axon.storage.migrations')).toBe('error');
    expect(at('axon.access.http.8008')).toBe('warn');
    expect(at('axon.access.http.8080')).toBe('info'); // another listener: synapse's level
    expect(at('axon.rooms')).toBe('debug'); // synapse.handlers.room → synapse.handlers
    expect(at('axon.http')).toBe('info');
    expect(effectiveLevel('axon.http', new Map(), 'warn')).toBe('warn'); // the root's
  });

  it('a case-sensitive match, as Python: synapse.storage.sql is not synapse.storage.SQL', () => {
    expect(effectiveLevel('axon.storage.sql', new Map([['synapse.storage.sql', 'debug']]), 'info')).toBe('info');
  });

  it('the loggers whose handlers a record reaches, deepest first', () => {
    const configured = new Set(['synapse', 'synapse.access', 'axon.access.http.8008', 'synapse.http']);
    expect(configuredAncestors('axon.access.http.8008', (n) => configured.has(n))).toEqual(['axon.access.http.8008', 'synapse.access', 'synapse']);
  });
});
