/** What every API plugin is given: configuration, database, keys, logger. */
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../config/types.js';
import type { ServerKeys } from '../services/server-keys.js';
import type { Database } from '../storage/database.js';

export interface AppContext {
  readonly config: HomeserverConfig;
  readonly database: Database;
  readonly keys: ServerKeys;
  readonly logger: Logger;
}

export interface PluginOptions {
  ctx: AppContext;
}
