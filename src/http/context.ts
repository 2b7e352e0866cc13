/** What every API plugin is given: configuration, database, keys, logger, and the services built for the process. */
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../config/types.js';
import type { Services } from '../services/index.js';
import type { ServerKeys } from '../services/server-keys.js';
import type { Database } from '../storage/database.js';

export interface AppContext {
  readonly config: HomeserverConfig;
  readonly database: Database;
  readonly keys: ServerKeys;
  readonly logger: Logger;
  /** Built once per process by createServices (services/index.ts); plugins only look them up. */
  readonly services: Services;
}

export interface PluginOptions {
  ctx: AppContext;
}
