#!/usr/bin/env node
/**
 * Entry point: `npm start -- <Synapse-style arguments>`; see cli/args.ts.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseCliArgs, USAGE, UsageError } from './cli/args.js';
import { failureText } from './cli/failure.js';
import { generateFiles } from './cli/generate.js';
import { removePidFile, writePidFile } from './cli/pid-file.js';
import { installShutdown } from './cli/shutdown.js';
import { checkWritablePaths } from './cli/writable-paths.js';
import { loadConfig } from './config/load.js';
import { closeLogging, startLogging, subsystemLogger } from './logger.js';
import { type RunningServer, startServer } from './server.js';
import { openDatabase } from './storage/database.js';
import { migrateToLatest } from './storage/migrate.js';
import { SERVER_NAME_TAG, SERVER_VERSION } from './version.js';

const DEFAULT_CONFIG = 'homeserver.yaml';

async function main(argv: string[]): Promise<number> {
  const args = parseCliArgs(argv);
  if (args.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.command === 'version') {
    process.stdout.write(`${SERVER_NAME_TAG} ${SERVER_VERSION}\n`);
    return 0;
  }
  // Lines are held until the config says where and at which level they go (see logger.ts).
  const logging = startLogging(process.env);
  const logger = logging.logger;
  const embeddedDefault = args.configPaths.length === 0;
  const paths = embeddedDefault ? [resolve(DEFAULT_CONFIG)] : args.configPaths;

  if (args.generateConfig) {
    if (!args.serverName) throw new UsageError('--generate-config needs --server-name (-H), as Synapse does');
    const target = paths[paths.length - 1] as string;
    generateFiles({ configPath: target, serverName: args.serverName, reportStats: args.reportStats ?? false, args, logger });
    return 0;
  }
  if (embeddedDefault && !existsSync(paths[0] as string)) {
    logger.info({ config: paths[0] }, "no homeserver.yaml here: generating one for server name 'localhost' with the embedded database");
    generateFiles({ configPath: paths[0] as string, serverName: 'localhost', reportStats: false, args, logger });
  }

  const config = loadConfig(paths, { env: process.env, warn: (msg) => logger.warn(msg), info: (msg) => logger.info(msg) });
  logging.configure(config);

  if (args.generateKeys) {
    generateFiles({ configPath: paths[0] as string, serverName: config.server_name, reportStats: config.report_stats, args, logger });
    return 0;
  }

  if (args.command === 'migrate') {
    const database = await openDatabase(config.database, subsystemLogger(logger, 'axon.storage'), subsystemLogger(logger, 'axon.storage.sql'));
    try {
      const report = await migrateToLatest(database.db);
      logger.info({ applied: report.applied, known: report.total }, 'database is up to date');
    } finally {
      await database.close();
    }
    return 0;
  }

  // From here on a signal always shuts down cleanly, whatever start-up has reached.
  const pidFile = config.pid_file;
  let started: Promise<RunningServer> | undefined;
  installShutdown(
    {
      close: async () => {
        const server = await started?.catch(() => undefined);
        await server?.close();
        if (pidFile) removePidFile(pidFile);
      },
    },
    logger,
    undefined,
    undefined,
    () => closeLogging(logger),
  );
  // Every path the server writes, checked before anything listens (log files were opened by configure()).
  checkWritablePaths(config);
  if (pidFile) writePidFile(pidFile);
  started = startServer(config, logger);
  try {
    await started;
  } catch (err) {
    if (pidFile) removePidFile(pidFile);
    throw err;
  }
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    // Failures the operator is expected to fix: one `axon: …` line per problem; a bug also gets its stack.
    process.stderr.write(failureText(err));
    if (err instanceof UsageError) process.stderr.write(`\n${USAGE}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
