/**
 * Account data a client writes for itself, global or per room. Each write
 * is one transaction taking a new position on the account-data stream; once
 * it commits, the user's waiting /sync long-polls are woken.
 */
import type { Kysely } from 'kysely';
import { getAccountData, GLOBAL, putAccountData } from '../storage/account-data.js';
import type { Schema } from '../storage/schema.js';
import type { Notifier } from './notifier.js';

export interface AccountDataDeps {
  readonly db: Kysely<Schema>;
  readonly notifier: Notifier;
}

export class AccountDataService {
  constructor(private readonly d: AccountDataDeps) {}

  /** The content stored for `type`, global when `roomId` is undefined. */
  get(userId: string, roomId: string | undefined, type: string): Promise<Record<string, unknown> | undefined> {
    return getAccountData(this.d.db, userId, roomId ?? GLOBAL, type);
  }

  /** Stores `content` for `type` (global when `roomId` is undefined), then wakes the user's syncs. */
  async put(userId: string, roomId: string | undefined, type: string, content: Record<string, unknown>): Promise<void> {
    await this.d.db.transaction().execute((tx) => putAccountData(tx, userId, roomId ?? GLOBAL, type, content));
    this.d.notifier.notifyUsers([userId]);
  }
}
