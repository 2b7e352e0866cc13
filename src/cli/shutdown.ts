/**
 * SIGTERM/SIGINT: stop accepting, finish the requests in flight, close the
 * database, exit 0 — what systemd's `systemctl stop` expects. A second
 * signal while closing exits at once.
 */
import type { Logger } from 'pino';

export interface Closable {
  close(): Promise<void>;
}

export function installShutdown(server: Closable, logger: Logger, exit: (code: number) => void = (c) => process.exit(c)): () => void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal }, 'second signal while shutting down; exiting now');
      exit(1);
      return;
    }
    closing = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    server.close().then(
      () => {
        logger.info('shut down cleanly');
        logger.flush?.();
        exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        exit(1);
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
