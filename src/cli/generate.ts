/** --generate-config / --generate-keys / the first-run default: write what is missing, log what was done. */
import type { Logger } from 'pino';
import { writeGeneratedFiles } from '../config/generate.js';
import type { CliArgs } from './args.js';

export interface GenerateStep {
  configPath: string;
  serverName: string;
  reportStats: boolean;
  args: CliArgs;
  logger: Logger;
}

export function generateFiles(step: GenerateStep): void {
  const result = writeGeneratedFiles({
    serverName: step.serverName,
    configPath: step.configPath,
    dataDir: step.args.dataDirectory,
    keysDir: step.args.keysDirectory,
    reportStats: step.reportStats,
    openPrivatePorts: step.args.openPrivatePorts,
  });
  for (const msg of result.messages) step.logger.info(msg);
}
