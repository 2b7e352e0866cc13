/**
 * The handlers on real files: size rotation (`homeserver.log.1` …, at most
 * backupCount), timed rotation (per second here, as `when: S` allows),
 * SIGHUP reopening a moved FileHandler file, WatchedFileHandler, the
 * buffering handlers' flush rules, per-logger levels, lines held until the
 * config is read, and the start-up error for an unwritable file.
 */
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Logging, startLogging, subsystemLogger } from '../../src/logger.js';
import { isJournalStream } from '../../src/logging/handlers.js';

const open: Logging[] = [];
afterEach(async () => {
  for (const l of open.splice(0)) await l.dispose();
});

function setup(yaml: (dir: string) => string): { dir: string; logging: Logging; file: (name?: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'axon-loghandlers-'));
  writeFileSync(join(dir, 'log.yaml'), yaml(dir));
  const logging = startLogging({});
  open.push(logging);
  logging.configure({ log_config: join(dir, 'log.yaml') });
  const file = (name = 'homeserver.log') => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '');
  return { dir, logging, file };
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const FMT = "formatters:\n  plain: {format: '%(levelname)s %(name)s %(message)s'}\n";

describe('RotatingFileHandler', () => {
  it('rotates by size into homeserver.log.1, .2 (newest first) and keeps backupCount of them', async () => {
    const { dir, logging, file } = setup(
      (d) =>
        `version: 1\n${FMT}handlers:\n  file:\n    class: logging.handlers.RotatingFileHandler\n    formatter: plain\n    filename: ${d}/homeserver.log\n    maxBytes: 300\n    backupCount: 2\nroot: {level: INFO, handlers: [file]}\n`,
    );
    const log = subsystemLogger(logging.logger, 'axon.rooms');
    for (let i = 0; i < 40; i++) log.info(`line ${String(i).padStart(3, '0')} ${'x'.repeat(20)}`);
    await logging.flush();
    const files = readdirSync(dir)
      .filter((f) => f.startsWith('homeserver.log'))
      .sort();
    expect(files).toEqual(['homeserver.log', 'homeserver.log.1', 'homeserver.log.2']);
    const numbers = (text: string) => [...text.matchAll(/line (\d+)/g)].map((m) => Number(m[1]));
    const kept = [...numbers(file('homeserver.log.2')), ...numbers(file('homeserver.log.1')), ...numbers(file())];
    // Oldest backup first, the current file last: one contiguous run ending with the last line.
    expect(kept.at(-1)).toBe(39);
    expect(kept).toEqual(kept.map((_, i) => 39 - (kept.length - 1) + i));
    expect(kept.length).toBeLessThan(40); // the oldest lines went with the third rotation
    expect(file('homeserver.log.1')).toMatch(/^INFO axon.rooms line \d{3} x+\n/);
  });
});

describe('TimedRotatingFileHandler', () => {
  it('rotates at each period into homeserver.log.<period start> and keeps backupCount of them', async () => {
    const { dir, logging, file } = setup(
      (d) =>
        `version: 1\n${FMT}handlers:\n  file:\n    class: logging.handlers.TimedRotatingFileHandler\n    formatter: plain\n    filename: ${d}/homeserver.log\n    when: S\n    interval: 1\n    backupCount: 2\n    utc: true\nroot: {level: INFO, handlers: [file]}\n`,
    );
    const log = subsystemLogger(logging.logger, 'axon.sync');
    const rotated = () => readdirSync(dir).filter((f) => /^homeserver\.log\.\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d$/.test(f));
    const written: { n: number; at: number }[] = [];
    let n = 0;
    await until('three rotations', () => {
      const at = Date.now();
      log.info(`tick ${n}`);
      written.push({ n: n++, at });
      return rotated().length >= 2 && written.length > 40 && written;
    });
    await logging.flush();
    await until('at most backupCount rotated files', () => rotated().length <= 2);
    // Each rotated file is named for the UTC second its lines were written in.
    for (const f of rotated()) {
      const stamp = f.slice('homeserver.log.'.length);
      const [date, time] = stamp.split('_') as [string, string];
      const start = Date.parse(`${date}T${time.replace(/-/g, ':')}Z`);
      const inFile = [...readFileSync(join(dir, f), 'utf8').matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
      for (const i of inFile) {
        const w = written[i]!;
        expect(w.at).toBeGreaterThanOrEqual(start - 50);
        expect(w.at).toBeLessThan(start + 1000 + 50);
      }
    }
    expect(file()).toMatch(/tick \d+/);
  });
});

describe('FileHandler and WatchedFileHandler', () => {
  it('SIGHUP reopens a plain file after logrotate moved it', async () => {
    const { dir, logging, file } = setup(
      (d) => `version: 1\n${FMT}handlers:\n  file: {class: logging.FileHandler, formatter: plain, filename: ${d}/homeserver.log}\nroot: {level: INFO, handlers: [file]}\n`,
    );
    logging.logger.info('before the move');
    renameSync(join(dir, 'homeserver.log'), join(dir, 'homeserver.log.old'));
    logging.logger.info('after the move, before SIGHUP');
    process.emit('SIGHUP', 'SIGHUP');
    logging.logger.info('after SIGHUP');
    await logging.flush();
    expect(file('homeserver.log.old')).toBe('INFO axon.app before the move\nINFO axon.app after the move, before SIGHUP\n');
    expect(file()).toContain('INFO axon.app after SIGHUP\n');
    expect(file()).toContain('reloaded log config from');
  });

  it('WatchedFileHandler reopens by itself when the file was moved', async () => {
    const { dir, logging, file } = setup(
      (d) =>
        `version: 1\n${FMT}handlers:\n  file: {class: logging.handlers.WatchedFileHandler, formatter: plain, filename: ${d}/homeserver.log}\nroot: {level: INFO, handlers: [file]}\n`,
    );
    logging.logger.info('one');
    renameSync(join(dir, 'homeserver.log'), join(dir, 'homeserver.log.1'));
    await new Promise((r) => setTimeout(r, 1100)); // it looks at most once a second
    logging.logger.info('two');
    expect(file('homeserver.log.1')).toBe('INFO axon.app one\n');
    expect(file()).toBe('INFO axon.app two\n');
  });

  it("mode: w truncates at start; encoding is the file's", () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-loghandlers-'));
    writeFileSync(join(dir, 'old.log'), 'old content\n');
    writeFileSync(
      join(dir, 'log.yaml'),
      `version: 1\nhandlers:\n  f: {class: logging.FileHandler, filename: ${dir}/old.log, mode: w, encoding: latin-1}\nroot: {level: INFO, handlers: [f]}\n`,
    );
    const logging = startLogging({});
    open.push(logging);
    logging.configure({ log_config: join(dir, 'log.yaml') });
    logging.logger.info('café');
    expect(readFileSync(join(dir, 'old.log'))).toEqual(Buffer.from('café\n', 'latin1'));
  });

  it('an unwritable log file is one start-up error naming log_config, the handler and the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-loghandlers-'));
    const bad = join(dir, 'no-such-dir', 'homeserver.log');
    writeFileSync(
      join(dir, 'log.yaml'),
      `version: 1\nhandlers:\n  file: {class: logging.handlers.RotatingFileHandler, filename: ${bad}, maxBytes: 10, backupCount: 1}\nroot: {handlers: [file]}\n`,
    );
    const logging = startLogging({});
    open.push(logging);
    expect(() => logging.configure({ log_config: join(dir, 'log.yaml') })).toThrow(
      `log_config ${join(dir, 'log.yaml')}: handlers.file.filename: cannot open ${bad} for writing (ENOENT: no such directory)`,
    );
  });
});

describe('MemoryHandler and PeriodicallyFlushingMemoryHandler', () => {
  const buffered = (extra: string) => (d: string) =>
    `version: 1\n${FMT}handlers:\n  file: {class: logging.FileHandler, formatter: plain, filename: ${d}/homeserver.log}\n  buffer: {class: ${extra}, target: file, capacity: 3, flushLevel: ERROR}\nroot: {level: DEBUG, handlers: [buffer]}\n`;

  it('holds records until capacity, or one at flushLevel, then hands them all over in order', async () => {
    const { logging, file } = setup(buffered('logging.handlers.MemoryHandler'));
    const log = logging.logger;
    log.info('a');
    log.warn('b');
    expect(file()).toBe('');
    log.debug('c');
    expect(file()).toBe('INFO axon.app a\nWARNING axon.app b\nDEBUG axon.app c\n');
    log.info('d');
    log.error('e');
    expect(file()).toMatch(/c\nINFO axon.app d\nERROR axon.app e\n$/);
    log.info('f');
    await logging.close(); // shutdown hands over what is held
    expect(file()).toMatch(/e\nINFO axon.app f\n$/);
  });

  it("Synapse's handler also flushes every period seconds", async () => {
    const { logging, file } = setup(buffered('synapse.logging.handlers.PeriodicallyFlushingMemoryHandler, period: 0.2'));
    logging.logger.info('waiting');
    expect(file()).toBe('');
    await until('the periodic flush', () => file().includes('INFO axon.app waiting'));
  });
});

describe('levels', () => {
  it("per-logger levels by Synapse's names, a child inheriting its nearest configured ancestor's", () => {
    const { logging, file } = setup(
      (d) =>
        `version: 1\n${FMT}handlers:\n  file: {class: logging.FileHandler, formatter: plain, filename: ${d}/homeserver.log}\nloggers:\n  synapse.storage.SQL: {level: DEBUG}\n  synapse.access.http.8008: {level: WARNING}\n  synapse.handlers: {level: ERROR}\nroot: {level: INFO, handlers: [file]}\n`,
    );
    const l = logging.logger;
    subsystemLogger(l, 'axon.storage.sql').debug('select 1');
    subsystemLogger(l, 'axon.storage').debug('storage debug');
    subsystemLogger(l, 'axon.storage').info('storage info');
    subsystemLogger(l, 'axon.access.http.8008').info('access 8008');
    subsystemLogger(l, 'axon.access.http.8080').info('access 8080');
    subsystemLogger(l, 'axon.presence').warn('presence warn');
    subsystemLogger(l, 'axon.presence').error('presence error');
    expect(file()).toBe('DEBUG axon.storage.sql select 1\nINFO axon.storage storage info\nINFO axon.access.http.8080 access 8080\nERROR axon.presence presence error\n');
  });

  it('propagate: false stops at the logger; its own handlers take it', () => {
    const { file } = (() => {
      const s = setup(
        (d) =>
          `version: 1\n${FMT}handlers:\n  main: {class: logging.FileHandler, formatter: plain, filename: ${d}/homeserver.log}\n  access: {class: logging.FileHandler, formatter: plain, filename: ${d}/access.log}\nloggers:\n  synapse.access: {handlers: [access], propagate: false}\nroot: {level: INFO, handlers: [main]}\n`,
      );
      subsystemLogger(s.logging.logger, 'axon.access.http.8008').info('GET /');
      subsystemLogger(s.logging.logger, 'axon.http').info('handled');
      return s;
    })();
    expect(file('access.log')).toBe('INFO axon.access.http.8008 GET /\n');
    expect(file()).toBe('INFO axon.http handled\n');
  });

  it('lines before configure() are held and go out at the configured level; AXON_LOG_LEVEL overrides the root', () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-loghandlers-'));
    writeFileSync(
      join(dir, 'log.yaml'),
      `version: 1\n${FMT}handlers:\n  f: {class: logging.FileHandler, formatter: plain, filename: ${dir}/homeserver.log}\nroot: {level: INFO, handlers: [f]}\n`,
    );
    const logging = startLogging({ AXON_LOG_LEVEL: 'WARNING' });
    open.push(logging);
    logging.logger.info('early info');
    logging.logger.warn('early warning');
    logging.configure({ log_config: join(dir, 'log.yaml'), log_level: 'debug' });
    logging.logger.info('later info');
    logging.logger.error('later error');
    expect(readFileSync(join(dir, 'homeserver.log'), 'utf8')).toBe('WARNING axon.app early warning\nERROR axon.app later error\n');
  });

  it('the log_level key overrides the root level when AXON_LOG_LEVEL is not set', () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-loghandlers-'));
    writeFileSync(
      join(dir, 'log.yaml'),
      `version: 1\n${FMT}handlers:\n  f: {class: logging.FileHandler, formatter: plain, filename: ${dir}/homeserver.log}\nloggers:\n  synapse: {level: ERROR}\nroot: {level: INFO, handlers: [f]}\n`,
    );
    const logging = startLogging({});
    open.push(logging);
    logging.configure({ log_config: join(dir, 'log.yaml'), log_level: 'warn' });
    logging.logger.info('info');
    logging.logger.warn('warning');
    expect(readFileSync(join(dir, 'homeserver.log'), 'utf8')).toBe('WARNING axon.app warning\n');
  });
});

describe('StreamHandler under systemd', () => {
  it("knows its stream is journald's from JOURNAL_STREAM=<dev>:<inode> (then lines carry their priority)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-loghandlers-'));
    const fd = openSync(join(dir, 'stream'), 'w');
    try {
      const st = fstatSync(fd);
      expect(isJournalStream(fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` })).toBe(true);
      expect(isJournalStream(fd, { JOURNAL_STREAM: `${st.dev}:${st.ino + 1}` })).toBe(false);
      expect(isJournalStream(fd, {})).toBe(false);
    } finally {
      closeSync(fd);
    }
  });
});

describe('SIGHUP with a broken file', () => {
  it('keeps the previous config and says why', () => {
    const { dir, logging, file } = setup(
      (d) => `version: 1\n${FMT}handlers:\n  file: {class: logging.FileHandler, formatter: plain, filename: ${d}/homeserver.log}\nroot: {level: INFO, handlers: [file]}\n`,
    );
    writeFileSync(join(dir, 'log.yaml'), 'version: 1\nroot: {level: LOUD}\n');
    process.emit('SIGHUP', 'SIGHUP');
    logging.logger.info('still here');
    expect(file()).toMatch(
      /^ERROR axon.app SIGHUP: log config not reloaded, the previous one stays: log_config .*: root.level: unknown level "LOUD" .*\nINFO axon.app still here\n$/,
    );
  });
});
