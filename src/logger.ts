/**
 * The process logger. pino writes every line; Axon's subsystems log through
 * named child loggers (subsystemLogger), each at the level the log config
 * gives its name or an ancestor's (see logging/names.ts). Without a
 * `log_config` the lines are pino's JSON on stdout; with one, Python's
 * handlers and formatters as Synapse's file describes them (logging/).
 *
 * Secrets never reach a log line: access tokens are scrubbed from logged
 * URLs, and request headers are not logged at all.
 */
import { existsSync } from 'node:fs';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { ConfigError } from './config/errors.js';
import { loadLogConfig, toPinoLevel, type LogConfigSpec } from './config/log-config.js';
import { buildHandlers } from './logging/handlers.js';
import { effectiveLevel } from './logging/names.js';
import { PINO_LEVEL_VALUES } from './logging/record.js';
import { closeHandlers, LogRouter } from './logging/router.js';
import { FdSink } from './logging/sinks.js';

const SECRET_QUERY = /([?&](?:access_token|token|password|secret|client_secret)=)[^&#]*/gi;

/** A URL as it may be logged: secret query parameters replaced. */
export function scrubUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1<redacted>');
}

interface LoggableRequest {
  method?: string;
  url?: string;
  ip?: string;
  headers?: Record<string, string | string[] | undefined>;
}

const pinoOptions: LoggerOptions = {
  level: 'trace',
  base: null,
  serializers: {
    req: (req: LoggableRequest) => ({
      method: req.method,
      url: scrubUrl(req.url ?? ''),
      remoteAddress: req.ip,
      userAgent: req.headers?.['user-agent'],
    }),
    res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    err: pino.stdSerializers.err,
  },
  redact: { paths: ['password', '*.password', 'access_token', '*.access_token', 'new_password', 'auth.password'], censor: '<redacted>' },
};

const REGISTRY = Symbol.for('axon.logRegistry');

/** One per process (or test server): the pino root and its named loggers, kept so levels can change. */
class LogRegistry {
  readonly base: Logger;
  private readonly named = new Map<string, Logger>();
  private levels: ReadonlyMap<string, string> = new Map();
  private rootLevel: string;
  router: LogRouter | undefined;
  owner: Logging | undefined;

  constructor(destination: DestinationStream, rootLevel: string) {
    this.rootLevel = rootLevel;
    this.base = pino(pinoOptions, destination);
    // pino's children inherit from their parent's object, so every logger below finds this.
    Object.defineProperty(this.base, REGISTRY, { value: this });
  }

  levelOf(name: string): string {
    return effectiveLevel(name, this.levels, this.rootLevel);
  }

  get(name: string): Logger {
    let l = this.named.get(name);
    if (!l) {
      l = this.base.child({ name }, { level: this.levelOf(name) });
      this.named.set(name, l);
    }
    return l;
  }

  setLevels(levels: ReadonlyMap<string, string>, rootLevel: string): void {
    this.levels = levels;
    this.rootLevel = rootLevel;
    for (const [name, l] of this.named) l.level = this.levelOf(name);
  }
}

function registryOf(logger: Logger): LogRegistry | undefined {
  return (logger as unknown as Record<symbol, LogRegistry | undefined>)[REGISTRY];
}

/** pino JSON lines at one level, to stdout or `destination` (tests, embedding). Its name is `axon`. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const reg = new LogRegistry(destination ?? new FdSink(1), level);
  reg.setLevels(new Map(), level);
  return reg.get('axon');
}

/**
 * The named logger of a subsystem (`axon.storage`, `axon.access.http.8008`,
 * see logging/names.ts), from any logger of the same root; it logs at the
 * level the config gives that name.
 */
export function subsystemLogger(logger: Logger, name: string): Logger {
  const reg = registryOf(logger);
  return reg ? reg.get(name) : logger.child({ name });
}

/** Whether lines go through a log config's handlers (text, Synapse's shape) rather than as pino JSON. */
export function isLogConfigured(logger: Logger): boolean {
  return registryOf(logger)?.router?.isRouted ?? false;
}

/** Hands over what buffering handlers hold and waits until files and sockets have it. */
export async function flushLogging(logger: Logger): Promise<void> {
  await registryOf(logger)?.owner?.flush();
}

/** flushLogging, then closes the log files and sockets: the last thing shutdown does before exiting. */
export async function closeLogging(logger: Logger): Promise<void> {
  await registryOf(logger)?.owner?.close();
}

export interface LoggingConfig {
  log_config?: string;
  /** The Axon-only `log_level` key: overrides the root level, as AXON_LOG_LEVEL does. */
  log_level?: string;
}

/**
 * The process's logging from its first line: lines are held until
 * configure() has read the configuration, then go out through it, so a
 * configured WARNING prints no info line at all. If the process ends before
 * that, they are printed at exit (stderr when it failed).
 */
export class Logging {
  /** The start-up logger (`axon.app`, Synapse's `synapse.app`). */
  readonly logger: Logger;
  private readonly router = new LogRouter();
  private readonly registry: LogRegistry;
  private readonly unhook: (() => void)[] = [];
  private spec: LogConfigSpec | undefined;
  private override: string | undefined;
  private closed = false;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {
    this.registry = new LogRegistry(this.router, 'trace');
    this.registry.router = this.router;
    this.registry.owner = this;
    this.logger = this.registry.get('axon.app');
    this.on('exit', () => this.atExit());
    let flushed = false;
    this.on('beforeExit', () => {
      if (flushed) return;
      flushed = true;
      void this.flush();
    });
  }

  private on(event: 'exit' | 'beforeExit' | 'SIGHUP', fn: () => void): void {
    process.on(event, fn);
    this.unhook.push(() => process.off(event, fn));
  }

  private overrideLevel(config: LoggingConfig): string | undefined {
    const env = this.env['AXON_LOG_LEVEL'];
    if (env !== undefined && env.trim() !== '') {
      const level = toPinoLevel(env);
      if (!level)
        throw new ConfigError(`expected one of trace, debug, info, warn, error, fatal, silent (or DEBUG, INFO, WARNING, ERROR, CRITICAL), got ${JSON.stringify(env)}`, {
          file: 'environment',
          key: 'AXON_LOG_LEVEL',
        });
      return level;
    }
    return config.log_level;
  }

  /**
   * Reads `log_config` (a missing file was warned about by the loader: then
   * pino JSON on stdout) and sends the held lines through it. A broken file
   * or an unwritable log file throws a ConfigError naming both.
   */
  configure(config: LoggingConfig): void {
    const early = this.router.takeEarly();
    const warnings: string[] = [];
    try {
      const override = this.overrideLevel(config);
      if (config.log_config !== undefined && existsSync(config.log_config)) {
        warnings.push(...this.apply(loadLogConfig(config.log_config), override));
      } else {
        this.registry.setLevels(new Map(), override ?? 'info');
        this.router.useJson(new FdSink(1));
      }
    } catch (err) {
      // Nothing configured: the held lines go to stderr before the error is printed.
      this.printHeld(early, 2, config.log_level);
      throw err;
    }
    this.router.replay(early, (rec) => rec.level >= (PINO_LEVEL_VALUES[this.registry.levelOf(rec.name)] ?? 30));
    for (const w of new Set(warnings)) this.logger.warn(`log_config ${config.log_config}: ${w}`);
  }

  /** Builds the handlers (throws before changing anything), then switches to them. */
  private apply(spec: LogConfigSpec, override: string | undefined): string[] {
    const built = buildHandlers(spec);
    const levels = new Map<string, string>();
    for (const [name, l] of spec.loggers) if (l.level !== undefined) levels.set(name, l.level);
    let root = spec.root.level ?? 'warn';
    if (override !== undefined) {
      root = override;
      for (const top of ['synapse', 'axon']) if (levels.has(top)) levels.set(top, override);
    }
    this.registry.setLevels(levels, root);
    const previous = this.router.useRouting({ handlers: built.handlers, loggers: spec.loggers, root: spec.root });
    if (previous) void closeHandlers([...previous.handlers.values()]);
    if (!this.spec) this.on('SIGHUP', () => this.reload());
    this.spec = spec;
    this.override = override;
    return [...spec.warnings, ...built.warnings];
  }

  /** SIGHUP, as Synapse: read the log config again (which reopens its files); a broken one keeps the old. */
  private reload(): void {
    const path = this.spec?.path;
    if (path === undefined || this.closed) return;
    try {
      const warnings = this.apply(loadLogConfig(path), this.override);
      for (const w of new Set(warnings)) this.logger.warn(`log_config ${path}: ${w}`);
      this.logger.info(`reloaded log config from ${path} due to SIGHUP`);
    } catch (err) {
      this.router.reopen();
      this.logger.error(`SIGHUP: log config not reloaded, the previous one stays: ${(err as Error).message}`);
    }
  }

  flush(): Promise<void> {
    return this.router.flush();
  }

  /** Flushes and closes every handler; later lines at WARNING and above go to stderr. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.router.close();
    if (this.router.isRouted) this.router.useClosed();
  }

  /** Stops listening to the process (exit, SIGHUP); for tests that make several. */
  async dispose(): Promise<void> {
    await this.close();
    for (const u of this.unhook.splice(0)) u();
  }

  /** Held lines as pino JSON on stdout or stderr, at AXON_LOG_LEVEL (or `level`, or info). */
  private printHeld(lines: readonly string[], fd: 1 | 2, level?: string): void {
    const min = PINO_LEVEL_VALUES[toPinoLevel(this.env['AXON_LOG_LEVEL']) ?? level ?? 'info'] ?? 30;
    this.registry.setLevels(new Map(), 'info');
    this.router.useJson(new FdSink(fd));
    this.router.replay(lines, (rec) => rec.level >= min);
  }

  private atExit(): void {
    if (this.router.isEarly) {
      // Never configured (--generate-config, or start-up failed first): print what was held.
      const failed = process.exitCode !== undefined && process.exitCode !== 0;
      this.printHeld(this.router.takeEarly(), failed ? 2 : 1);
      return;
    }
    this.router.exitSync();
  }
}

/** The process's logging, holding lines until configure(); see Logging. */
export function startLogging(env: NodeJS.ProcessEnv = process.env): Logging {
  return new Logging(env);
}

/** A service's dependencies with its logger replaced by the named one (unchanged without a logger). */
export function withSubsystemLogger<T extends { readonly logger?: Logger | undefined }>(deps: T, name: string): T {
  return deps.logger ? { ...deps, logger: subsystemLogger(deps.logger, name) } : deps;
}
