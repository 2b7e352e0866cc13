/**
 * The one pino destination of the process. Until the configuration is read
 * it holds the lines (so nothing escapes the configured level); then either
 * passes pino's JSON through (no log_config) or parses each line once and
 * hands the record to every handler its logger routes to, as Python's
 * logging does: the logger's handlers, then its ancestors' until one has
 * `propagate: false`, then the root's.
 */
import type { LoggerSpec } from '../config/log-config.js';
import type { LogHandler } from './handlers.js';
import { configuredAncestors } from './names.js';
import { createFormatter, formatOnce } from './python-format.js';
import { LogRecord } from './record.js';
import { FdSink, reportOnce, type Sink } from './sinks.js';

/** At most this many lines are held before the configuration is read. */
const EARLY_LIMIT = 2000;

export interface Routing {
  handlers: ReadonlyMap<string, LogHandler>;
  loggers: ReadonlyMap<string, LoggerSpec>;
  root: LoggerSpec;
}

/** Python's "last resort": a record no handler takes, at WARNING or above, goes to stderr as its message. */
const lastResortFormat = createFormatter(undefined);

export class LogRouter {
  private mode: 'early' | 'json' | 'routed' | 'closed' = 'early';
  private early: string[] = [];
  private json: { write(s: string): void } | undefined;
  private routing: Routing | undefined;
  private routes = new Map<string, LogHandler[]>();
  private readonly stderr: Sink = new FdSink(2);
  private readonly report = reportOnce();

  /** pino's destination interface. */
  write(line: string): void {
    switch (this.mode) {
      case 'early':
        if (this.early.length < EARLY_LIMIT) this.early.push(line);
        return;
      case 'json':
        this.json?.write(line);
        return;
      case 'routed': {
        const rec = LogRecord.parse(line);
        if (rec) this.dispatch(rec);
        else this.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
        return;
      }
      case 'closed': {
        const rec = LogRecord.parse(line);
        if (rec && rec.level >= 40) this.stderr.write(`${formatOnce(lastResortFormat, rec)}\n`);
      }
    }
  }

  get isRouted(): boolean {
    return this.mode === 'routed';
  }

  get isEarly(): boolean {
    return this.mode === 'early';
  }

  /** JSON lines as pino wrote them, to `out`. */
  useJson(out: { write(s: string): void }): void {
    this.mode = 'json';
    this.json = out;
    this.routing = undefined;
    this.routes.clear();
  }

  /** Routes through `routing` from now on; returns the one it replaces, for closing. */
  useRouting(routing: Routing): Routing | undefined {
    const previous = this.routing;
    this.mode = 'routed';
    this.routing = routing;
    this.routes.clear();
    return previous;
  }

  /** After close: what still comes at WARNING or above goes to stderr, the rest nowhere. */
  useClosed(): void {
    this.mode = 'closed';
    this.routing = undefined;
    this.routes.clear();
  }

  /** The lines held so far, taken out. */
  takeEarly(): string[] {
    const lines = this.early;
    this.early = [];
    return lines;
  }

  /** Lines held before the configuration was read, through the configured output if `enabled` says so. */
  replay(lines: readonly string[], enabled: (rec: LogRecord) => boolean): void {
    for (const line of lines) {
      const rec = LogRecord.parse(line);
      if (!rec || !enabled(rec)) continue;
      if (this.mode === 'routed') this.dispatch(rec);
      else this.write(line);
    }
  }

  private routeFor(name: string): LogHandler[] {
    let route = this.routes.get(name);
    if (route) return route;
    const r = this.routing as Routing;
    const names: string[] = [];
    let propagate = true;
    for (const logger of configuredAncestors(name, (n) => r.loggers.has(n))) {
      const spec = r.loggers.get(logger) as LoggerSpec;
      names.push(...spec.handlers);
      if (!spec.propagate) {
        propagate = false;
        break;
      }
    }
    if (propagate) names.push(...r.root.handlers);
    route = [];
    for (const n of names) {
      const h = r.handlers.get(n);
      if (h && !route.includes(h)) route.push(h);
    }
    this.routes.set(name, route);
    return route;
  }

  private dispatch(rec: LogRecord): void {
    const route = this.routeFor(rec.name);
    let handled = false;
    for (const h of route) {
      if (rec.level < h.threshold) continue;
      handled = true;
      try {
        h.emit([rec]);
      } catch (err) {
        this.report(`log handler '${h.name}' failed`, err);
      }
    }
    if (!handled && route.length === 0 && rec.level >= 40) this.stderr.write(`${formatOnce(lastResortFormat, rec)}\n`);
  }

  private all(): LogHandler[] {
    return [...(this.routing?.handlers.values() ?? [])];
  }

  /** Also pino's `logger.flush(cb)`. */
  async flush(cb?: (err?: Error) => void): Promise<void> {
    // Buffering handlers hand over first (their flush awaits their target's).
    await Promise.all(this.all().map((h) => h.flush()));
    cb?.();
  }

  /** Buffering handlers hand over what they hold, then every file and socket is closed. */
  close(): Promise<void> {
    return closeHandlers(this.all());
  }

  exitSync(): void {
    const handlers = this.all();
    for (const h of handlers) if (!h.holds) h.exitSync();
    for (const h of handlers) if (h.holds) h.exitSync();
  }

  reopen(): void {
    for (const h of this.all()) h.reopen();
  }
}

/** Buffering handlers first (they hand over what they hold), then the files and sockets. */
export async function closeHandlers(handlers: readonly LogHandler[]): Promise<void> {
  for (const h of handlers) if (h.holds) await h.close();
  await Promise.all(handlers.filter((h) => !h.holds).map((h) => h.close()));
}
