/**
 * The suite's second pass in CI: on the embedded database (PGlite), the test
 * files whose outcome can differ there. The SQL is PostgreSQL's either way;
 * what differs is the embedded database's own start-up, migration and files,
 * its single connection (every transaction queued on it), and the first-run
 * defaults a new admin meets. The rest runs once, on PostgreSQL.
 *
 *   AXON_TEST_DB=embedded npx vitest run --config vitest.embedded.config.ts
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export const EMBEDDED_SET = [
  // Start-up, first run, migrations, the data directory, shutdown.
  'test/integration/cli.test.ts',
  'test/integration/database-setup.test.ts',
  'test/integration/service-layout.test.ts',
  'test/integration/startup-errors.test.ts',
  'test/integration/shutdown.test.ts',
  'test/integration/register-cli.test.ts',
  // The pool kysely drives (PGlite behind the same interface): what counts as a committed write.
  'test/integration/write-epoch.test.ts',
  // Many writers at once on the one connection: transactions, idempotency, long-polls.
  'test/integration/transaction-ids.test.ts',
  'test/integration/register.test.ts',
  'test/integration/login.test.ts',
  'test/integration/messages.test.ts',
  'test/integration/membership.test.ts',
  'test/integration/sync.test.ts',
  'test/integration/sync-longpoll.test.ts',
  'test/integration/media-upload.test.ts',
  'test/integration/admin-users.test.ts',
  // Two servers over HTTPS: signed federation requests and the keyring's storage.
  'test/integration/federation-queries.test.ts',
  // Rooms across servers: a join or an invite stored whole in one transaction, /send, backfill, the sender's outboxes.
  'test/integration/federation-join.test.ts',
  'test/integration/federation-rooms.test.ts',
  'test/integration/federation-invite.test.ts',
  // End-to-end flows with a real client library.
  'test/e2e/chat.test.ts',
  'test/e2e/encrypted-chat.test.ts',
];

// Spread, not mergeConfig: that would append this list to the base's include.
export default defineConfig({ ...base, test: { ...base.test, include: EMBEDDED_SET } });
