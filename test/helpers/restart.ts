/**
 * Restarts a test server on the same database and configuration (same
 * signing key, same data), as a process restart would: the first server is
 * closed, a new one starts on a new free port. Closing the returned server
 * closes the new one and then cleans up as the original would (dropping the
 * database). A file's server from `useTestServer` restarts in place:
 * `Object.assign(t, await restartTestServer(t))`.
 */
import { createLogger } from '../../src/logger.js';
import { startServer } from '../../src/server.js';
import type { TestServer } from './server.js';

export async function restartTestServer(t: TestServer): Promise<TestServer> {
  const closeFirst = t.close;
  await t.server.close();
  const server = await startServer(t.config, createLogger('silent'), { portOverride: 0 });
  const url = server.urls[0];
  if (!url) throw new Error('restarted server has no listener');
  return {
    ...t,
    url,
    server,
    close: async () => {
      await server.close();
      await closeFirst();
    },
  };
}
