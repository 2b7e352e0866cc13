/**
 * SIGTERM with a request in flight: the request finishes, new connections
 * are refused, the database is closed, and the process would exit 0.
 */
import type { FastifyPluginAsync } from 'fastify';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { installShutdown } from '../../src/cli/shutdown.js';
import type { PluginOptions } from '../../src/http/context.js';
import { createLogger } from '../../src/logger.js';
import { startTestServer } from '../helpers/server.js';

it('finishes the request in flight, then closes listeners and the database', async () => {
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => (entered = r));
  const slow: FastifyPluginAsync<PluginOptions> = async (app) => {
    app.get('/_matrix/client/v3/test/slow', async () => {
      entered();
      await new Promise((r) => setTimeout(r, 500));
      return { finished: true };
    });
  };
  const t = await startTestServer({ extraPlugins: [slow] });
  const exitCodes: number[] = [];
  let exited!: () => void;
  const exitCalled = new Promise<void>((r) => (exited = r));
  const uninstall = installShutdown(t.server, createLogger('silent'), (code) => {
    exitCodes.push(code);
    exited();
  });
  try {
    const inflight = fetch(`${t.url}/_matrix/client/v3/test/slow`);
    await inHandler;
    process.emit('SIGTERM', 'SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ finished: true });
    await exitCalled;
    expect(exitCodes).toEqual([0]);
    await expect(fetch(`${t.url}/health`)).rejects.toThrow();
    await expect(sql`select 1`.execute(t.server.ctx.database.db)).rejects.toThrow();
  } finally {
    uninstall();
    await t.close();
  }
});
