/** What every API plugin is given: configuration, database, keys, logger. */
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../config/types.js';
import type { AccountsService } from '../services/accounts.js';
import type { AuthService } from '../services/auth.js';
import type { RateLimiter } from '../services/rate-limit.js';
import type { RatelimitOverrides } from '../services/ratelimit-overrides.js';
import type { Notifier } from '../services/notifier.js';
import type { PresenceService } from '../services/presence.js';
import type { PushService } from '../services/push/push-service.js';
import type { StreamPositions } from '../services/sync/positions.js';
import type { PusherService } from '../services/push/pushers.js';
import type { ReceiptsService } from '../services/receipts.js';
import type { RoomService } from '../services/rooms/room-service.js';
import type { TypingService } from '../services/typing.js';
import type { UiaService } from '../services/uia.js';
import type { PasswordHasher } from '../services/passwords.js';
import type { ServerKeys } from '../services/server-keys.js';
import type { Database } from '../storage/database.js';

export interface AppContext {
  readonly config: HomeserverConfig;
  readonly database: Database;
  readonly keys: ServerKeys;
  readonly logger: Logger;
  readonly services: Services;
}

/** Services shared across API areas; area-specific ones are built inside their plugin. */
export interface Services {
  readonly auth: AuthService;
  readonly passwords: PasswordHasher;
  readonly accounts: AccountsService;
  readonly uia: UiaService;
  readonly rateLimiter: RateLimiter;
  /** Per-user overrides of the rate limits (admin API), read by rateLimiter. */
  readonly ratelimitOverrides: RatelimitOverrides;
  readonly notifier: Notifier;
  readonly rooms: RoomService;
  readonly presence: PresenceService;
  readonly typing: TypingService;
  readonly receipts: ReceiptsService;
  readonly push: PushService;
  /** Settled stream positions, shared by /sync and the pusher loop. */
  readonly positions: StreamPositions;
  readonly pushers: PusherService;
}

export interface PluginOptions {
  ctx: AppContext;
}
