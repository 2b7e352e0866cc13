/**
 * Where formatted log text goes: a file descriptor (stdout/stderr), a plain
 * file (written synchronously, as Python's FileHandler flushes every
 * record; reopened on SIGHUP, or when moved for WatchedFileHandler), or a
 * rotating file (rotating-file-stream does the rotation).
 */
import { closeSync, fstatSync, openSync, statSync, writeSync, appendFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createStream, type Generator, type RotatingFileStream } from 'rotating-file-stream';
import { LogConfigError, type TimedWhen } from '../config/log-config.js';
import { strftime } from './python-format.js';

export interface Sink {
  write(text: string): void;
  /** Resolves when what was written has reached the file (or socket). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** At process exit: nothing asynchronous runs any more, so write what is pending now. */
  exitSync(): void;
  /** SIGHUP: open the file again (logrotate moved it). */
  reopen(): void;
}

/**
 * Waits for the writes of a stream: resolves when every write made so far
 * has been handled ('drain' comes only after a write that filled the buffer).
 */
export class PendingWrites {
  private count = 0;
  private waiters: (() => void)[] = [];

  /** The callback to pass to write(). */
  add(): () => void {
    this.count++;
    return () => {
      if (--this.count === 0) for (const w of this.waiters.splice(0)) w();
    };
  }

  settled(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The stream failed: nothing more will be handled. */
  abandon(): void {
    this.count = 0;
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Reports a sink's own failure once, on the real stderr (logging cannot log it). */
export function reportOnce(): (what: string, err: unknown) => void {
  let said = false;
  return (what, err) => {
    if (said) return;
    said = true;
    const code = (err as NodeJS.ErrnoException).code;
    try {
      writeSync(2, `axon: ${what}: ${code ? `${code}: ` : ''}${(err as Error).message ?? String(err)}\n`);
    } catch {
      // stderr is gone too.
    }
  };
}

/** What a sink that writes at once has to do besides writing: nothing. */
export abstract class ImmediateSink {
  /** Also pino's `flush(cb)` when this is pino's destination. */
  flush(cb?: (err?: Error) => void): Promise<void> {
    cb?.();
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  exitSync(): void {}
  reopen(): void {}
}

/** A sink over a stream that writes later (a rotating file, a socket): waits for its writes, stops at its first error. */
interface WritableOut {
  write(text: string, done: () => void): boolean;
  on(event: 'error', f: (err: Error) => void): unknown;
}

export abstract class AsyncSink<S extends WritableOut> implements Sink {
  protected readonly pending = new PendingWrites();
  protected failed = false;
  protected readonly report = reportOnce();

  constructor(
    protected readonly out: S,
    what: string,
  ) {
    out.on('error', (err) => {
      this.failed = true;
      this.pending.abandon();
      this.report(what, err);
    });
  }

  write(text: string): void {
    if (!this.failed) this.out.write(text, this.pending.add());
  }

  flush(): Promise<void> {
    return this.pending.settled();
  }

  abstract close(): Promise<void>;
  exitSync(): void {}
  reopen(): void {}
}

/** stdout or stderr, written synchronously (pino's default for stdout). */
export class FdSink extends ImmediateSink implements Sink {
  private readonly report = reportOnce();

  constructor(private readonly fd: 1 | 2) {
    super();
  }

  write(text: string): void {
    try {
      writeSync(this.fd, text);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        // A non-blocking pipe that is full: retry the rest once, then drop.
        try {
          writeSync(this.fd, text);
          return;
        } catch {
          // fall through
        }
      }
      this.report(`cannot write the log to ${this.fd === 1 ? 'stdout' : 'stderr'}`, err);
    }
  }
}

function openError({ configPath, handler, filename }: FileTarget, err: unknown): LogConfigError {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.code === 'ENOENT' ? 'no such directory' : (e.message ?? String(err));
  return new LogConfigError(configPath, `handlers.${handler}.filename`, `cannot open ${filename} for writing (${e.code ? `${e.code}: ` : ''}${why})`);
}

/** Opens (and closes) the file now, so an unwritable path is a start-up error naming the handler. */
function checkWritable(target: FileTarget): void {
  try {
    closeSync(openSync(target.filename, target.append ? 'a' : 'w', 0o640));
  } catch (err) {
    throw openError(target, err);
  }
}

/** A handler's file, as the log config names it. */
export interface FileTarget {
  /** The log config, for messages. */
  configPath: string;
  handler: string;
  filename: string;
  append: boolean;
  encoding: BufferEncoding;
}

/** logging.FileHandler / WatchedFileHandler. */
export class FileSink implements Sink {
  private fd: number;
  private ino = 0;
  private dev = 0;
  private lastCheck = 0;
  private readonly report = reportOnce();
  private readonly filename: string;
  private readonly encoding: BufferEncoding;

  constructor(
    target: FileTarget,
    private readonly watched: boolean,
  ) {
    this.filename = target.filename;
    this.encoding = target.encoding;
    try {
      this.fd = openSync(target.filename, target.append ? 'a' : 'w', 0o640);
    } catch (err) {
      throw openError(target, err);
    }
    this.noteInode();
  }

  private noteInode(): void {
    try {
      const st = fstatSync(this.fd);
      this.ino = st.ino;
      this.dev = st.dev;
    } catch {
      // keep the old values
    }
  }

  /** WatchedFileHandler: reopen when the path no longer names the open file (checked at most once a second). */
  private checkMoved(): void {
    const now = Date.now();
    if (now - this.lastCheck < 1000) return;
    this.lastCheck = now;
    try {
      const st = statSync(this.filename);
      if (st.ino === this.ino && st.dev === this.dev) return;
    } catch {
      // gone: reopen creates it
    }
    this.reopen();
  }

  write(text: string): void {
    if (this.watched) this.checkMoved();
    try {
      if (this.encoding === 'utf8') writeSync(this.fd, text);
      else writeSync(this.fd, Buffer.from(text, this.encoding));
    } catch (err) {
      this.report(`cannot write the log file ${this.filename}`, err);
    }
  }

  reopen(): void {
    try {
      const fd = openSync(this.filename, 'a', 0o640);
      const old = this.fd;
      this.fd = fd;
      closeSync(old);
      this.noteInode();
    } catch (err) {
      this.report(`cannot reopen the log file ${this.filename}`, err);
    }
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.exitSync();
    return Promise.resolve();
  }

  exitSync(): void {
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = -1;
  }
}

/** Python's TimedRotatingFileHandler suffixes, by `when`. */
function timedSuffix(when: TimedWhen): string {
  if (when === 'S') return '%Y-%m-%d_%H-%M-%S';
  if (when === 'M') return '%Y-%m-%d_%H-%M';
  if (when === 'H') return '%Y-%m-%d_%H';
  return '%Y-%m-%d';
}

/** rotating-file-stream's interval for Python's `when` and `interval`. */
function rfsInterval(when: TimedWhen, interval: number): string {
  if (when === 'S') return `${interval}s`;
  if (when === 'M') return `${interval}m`;
  if (when === 'H') return `${interval}h`;
  if (when.startsWith('W')) return `${7 * interval}d`;
  return `${interval}d`;
}

export type RotationSpec = { kind: 'size'; maxBytes: number; backupCount: number } | { kind: 'time'; when: TimedWhen; interval: number; backupCount: number; utc: boolean };

/**
 * RotatingFileHandler (`homeserver.log.1` is the newest backup, up to
 * backupCount) and TimedRotatingFileHandler (`homeserver.log.2026-12-06`,
 * the start of the period it holds; the oldest beyond backupCount removed).
 */
export class RotatingSink extends AsyncSink<RotatingFileStream> {
  private exiting = false;

  constructor(
    private readonly target: FileTarget,
    rotation: RotationSpec,
  ) {
    checkWritable(target);
    super(RotatingSink.open(target, rotation), `the rotating log file ${target.filename} failed; its lines are dropped`);
    this.out.on('warning', (err) => this.report(`rotating ${target.filename}`, err));
  }

  private static open({ filename, encoding }: FileTarget, rotation: RotationSpec): RotatingFileStream {
    if (rotation.kind === 'size') {
      // Classical (logrotate) mode: rotating-file-stream passes the backup number, or nothing for the file itself.
      const backup = (index: number | Date | null) => (typeof index === 'number' && index > 0 ? `${filename}.${index}` : filename);
      return createStream(backup as Generator, { size: `${rotation.maxBytes}B`, rotate: rotation.backupCount, encoding });
    }
    const suffix = timedSuffix(rotation.when);
    const name = (time: number | Date | null, index?: number) =>
      time instanceof Date ? `${filename}.${strftime(suffix, time, rotation.utc)}${index !== undefined && index > 1 ? `.${index - 1}` : ''}` : filename;
    return createStream(name as Generator, {
      interval: rfsInterval(rotation.when, rotation.interval),
      intervalBoundary: true,
      intervalUTC: rotation.utc,
      // Python rolls a file over at start when it was last written in an earlier period.
      initialRotation: true,
      encoding,
      ...(rotation.backupCount > 0 ? { maxFiles: rotation.backupCount, history: join(dirname(filename), `.${basename(filename)}.rotated`) } : {}),
    });
  }

  override write(text: string): void {
    if (!this.exiting) return super.write(text);
    try {
      appendFileSync(this.target.filename, text, this.target.encoding);
    } catch {
      // nothing more can be done at exit
    }
  }

  close(): Promise<void> {
    if (this.failed || this.out.writableFinished) return Promise.resolve();
    return new Promise((resolve) => {
      this.out.once('finish', () => resolve());
      this.out.once('error', () => resolve());
      this.out.end();
    });
  }

  override exitSync(): void {
    this.exiting = true;
  }
}
