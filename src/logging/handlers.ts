/**
 * Python's logging handlers, built from a LogConfigSpec: StreamHandler,
 * FileHandler / WatchedFileHandler, RotatingFileHandler,
 * TimedRotatingFileHandler, MemoryHandler and Synapse's
 * PeriodicallyFlushingMemoryHandler, systemd's JournalHandler, NullHandler.
 */
import { fstatSync } from 'node:fs';
import type { HandlerSpec, LogConfigSpec } from '../config/log-config.js';
import { isSocket, journalLines, JournalSink } from './journald.js';
import { createFormatter, formatOnce, type Formatter } from './python-format.js';
import { PINO_LEVEL_VALUES, syslogPriority, type LogRecord } from './record.js';
import { FdSink, FileSink, type FileTarget, ImmediateSink, RotatingSink, type Sink } from './sinks.js';

export interface LogHandler {
  readonly name: string;
  /** Records below this pino level are not handed to the handler by a logger. */
  readonly threshold: number;
  /** It holds records for another handler (MemoryHandler). */
  readonly holds: boolean;
  /** Python's Handler.handle: format and write (the level was checked by the caller). */
  emit(records: readonly LogRecord[]): void;
  flush(): Promise<void>;
  close(): Promise<void>;
  /** At process exit: from now on write synchronously; buffering handlers hand over what they hold. */
  exitSync(): void;
  reopen(): void;
}

class WritingHandler implements LogHandler {
  readonly holds = false;

  constructor(
    readonly name: string,
    readonly threshold: number,
    private readonly formatter: Formatter,
    private readonly sink: Sink,
    /** Text for the sink from a formatted record (journald prefixes each line with its priority). */
    private readonly frame: (text: string, rec: LogRecord) => string = (text) => `${text}\n`,
  ) {}

  emit(records: readonly LogRecord[]): void {
    let out = '';
    for (const rec of records) out += this.frame(formatOnce(this.formatter, rec), rec);
    if (out !== '') this.sink.write(out);
  }
  flush(): Promise<void> {
    return this.sink.flush();
  }
  close(): Promise<void> {
    return this.sink.close();
  }
  exitSync(): void {
    this.sink.exitSync();
  }
  reopen(): void {
    this.sink.reopen();
  }
}

/**
 * MemoryHandler: holds records until `capacity` of them, or one at
 * `flushLevel` or above, then hands them all to the target; Synapse's
 * PeriodicallyFlushingMemoryHandler also every `period` seconds. What it
 * holds is handed over at close and at process exit.
 */
class MemoryHandler implements LogHandler {
  readonly holds = true;
  private buffer: LogRecord[] = [];
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    readonly name: string,
    readonly threshold: number,
    private readonly capacity: number,
    private readonly flushLevel: number,
    private readonly target: LogHandler | undefined,
    private readonly flushOnClose: boolean,
    period: number | undefined,
  ) {
    if (period !== undefined) {
      this.timer = setInterval(() => this.handOver(), period * 1000);
      this.timer.unref();
    }
  }

  emit(records: readonly LogRecord[]): void {
    let now = false;
    for (const rec of records) {
      this.buffer.push(rec);
      if (rec.level >= this.flushLevel) now = true;
    }
    if (now || this.buffer.length >= this.capacity) this.handOver();
  }

  /** Python's MemoryHandler.flush: the target's handle() for each record (its own level is not checked again). */
  private handOver(): void {
    if (this.buffer.length === 0) return;
    const records = this.buffer;
    this.buffer = [];
    this.target?.emit(records);
  }

  async flush(): Promise<void> {
    this.handOver();
    await this.target?.flush();
  }

  close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.flushOnClose) this.handOver();
    else this.buffer = [];
    return Promise.resolve();
  }

  exitSync(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.flushOnClose) this.handOver();
  }

  reopen(): void {}
}

/** logging.NullHandler: takes records (so Python's last resort does not print them) and drops them. */
class NullHandler extends ImmediateSink implements LogHandler {
  readonly holds = false;

  constructor(
    readonly name: string,
    readonly threshold: number,
  ) {
    super();
  }
  emit(): void {}
}

/**
 * Whether this fd is journald's stream for the service (systemd sets
 * JOURNAL_STREAM=<dev>:<inode>, see systemd.exec(5)); journald then reads a
 * `<N>` prefix on each line as its priority and strips it.
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd);
    return String(st.dev) === m[1] && String(st.ino) === m[2];
  } catch {
    return false;
  }
}

function prioritised(text: string, rec: LogRecord): string {
  return journalLines(text, syslogPriority(rec.level));
}

export interface BuiltHandlers {
  handlers: Map<string, LogHandler>;
  /** Handlers that could not be used here, for one warning each (journald not running). */
  warnings: string[];
}

/**
 * The handlers a spec names, opened: an unwritable file throws a
 * LogConfigError naming the handler and the path.
 */
export function buildHandlers(spec: LogConfigSpec): BuiltHandlers {
  const formatters = new Map<string, Formatter>();
  for (const [name, f] of spec.formatters) formatters.set(name, createFormatter(f));
  const fallback = createFormatter(undefined);
  const handlers = new Map<string, LogHandler>();
  const warnings: string[] = [];
  const opened: LogHandler[] = [];
  const threshold = (h: HandlerSpec) => (h.level === undefined ? 0 : (PINO_LEVEL_VALUES[h.level] ?? 0));
  const fileOf = (h: { name: string; filename: string; encoding: BufferEncoding; append?: boolean }): FileTarget => ({
    configPath: spec.path,
    handler: h.name,
    filename: h.filename,
    append: h.append ?? true,
    encoding: h.encoding,
  });

  const build = (h: HandlerSpec): LogHandler | undefined => {
    const existing = handlers.get(h.name);
    if (existing) return existing;
    const fmt = (h.formatter !== undefined ? formatters.get(h.formatter) : undefined) ?? fallback;
    let handler: LogHandler | undefined;
    switch (h.kind) {
      case 'stream': {
        const fd = h.stream === 'stdout' ? 1 : 2;
        handler = new WritingHandler(h.name, threshold(h), fmt, new FdSink(fd), isJournalStream(fd) ? prioritised : undefined);
        break;
      }
      case 'file':
        handler = new WritingHandler(h.name, threshold(h), fmt, new FileSink(fileOf(h), h.watched));
        break;
      case 'rotating':
        handler = new WritingHandler(h.name, threshold(h), fmt, new RotatingSink(fileOf(h), { kind: 'size', maxBytes: h.maxBytes, backupCount: h.backupCount }));
        break;
      case 'timed': {
        const rotation = { kind: 'time', when: h.when, interval: h.interval, backupCount: h.backupCount, utc: h.utc } as const;
        handler = new WritingHandler(h.name, threshold(h), fmt, new RotatingSink({ ...fileOf(h), append: true }, rotation));
        break;
      }
      case 'journal':
        if (!isSocket(h.socket)) {
          warnings.push(`handler '${h.name}' (systemd.journal.JournalHandler): journald is not running here (no ${h.socket}); handler dropped`);
          return undefined;
        }
        handler = new WritingHandler(h.name, threshold(h), fmt, new JournalSink(h.socket, h.identifier), prioritised);
        break;
      case 'memory': {
        const targetSpec = h.target !== undefined ? spec.handlers.get(h.target) : undefined;
        const target = targetSpec ? build(targetSpec) : undefined;
        handler = new MemoryHandler(h.name, threshold(h), h.capacity, PINO_LEVEL_VALUES[h.flushLevel] ?? 50, target, h.flushOnClose, h.period);
        break;
      }
      case 'null':
        handler = new NullHandler(h.name, threshold(h));
        break;
    }
    handlers.set(h.name, handler);
    opened.push(handler);
    return handler;
  };

  try {
    for (const h of spec.handlers.values()) build(h);
  } catch (err) {
    for (const h of opened) void h.close();
    throw err;
  }
  return { handlers, warnings };
}
