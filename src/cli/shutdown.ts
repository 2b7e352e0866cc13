/**
 * SIGTERM/SIGINT: stop accepting, answer long-polls at once, finish the
 * requests in flight, close the database, exit 0 — what systemd's
 * `systemctl stop` expects. A second signal while closing exits at once.
 */
import type { Logger } from 'pino';

export interface Closable {
  close(): Promise<void>;
}

/** Past this, a shutdown that has not finished exits anyway (systemd would SIGKILL later; operators expect 10 s). */
const HARD_LIMIT_MS = 9_500;

export function installShutdown(
  server: Closable,
  logger: Logger,
  exit: (code: number) => void = (c) => process.exit(c),
  hardLimitMs = HARD_LIMIT_MS,
  /** Runs after the last line is logged, before exit (closing log files and sockets). */
  finish: () => Promise<void> = async () => undefined,
): () => void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal }, 'second signal while shutting down; exiting now');
      exit(1);
      return;
    }
    closing = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    // The server cuts requests that outlast its grace period; this is the last resort if closing itself hangs.
    const guard = setTimeout(() => {
      logger.error({ signal, after_ms: hardLimitMs }, 'shutdown did not finish in time; exiting now');
      exit(1);
    }, hardLimitMs);
    guard.unref();
    server.close().then(
      () => {
        logger.info('shut down cleanly');
        logger.flush?.();
        void finish().finally(() => {
          clearTimeout(guard);
          exit(0);
        });
      },
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        void finish().finally(() => {
          clearTimeout(guard);
          exit(1);
        });
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
