/** GET /health (plain "OK", as Synapse answers, for load balancers and uptime checks) and the landing page. */
import type { FastifyPluginAsync } from 'fastify';
import { SERVER_NAME_TAG, SERVER_VERSION } from '../version.js';
import type { PluginOptions } from './context.js';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const healthPlugin: FastifyPluginAsync<PluginOptions> = async (app) => {
  app.get('/health', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('OK'));
};

export const landingPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const name = escapeHtml(ctx.config.server_name);
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${SERVER_NAME_TAG} is running</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5">
<h1>It works! ${SERVER_NAME_TAG} is running</h1>
<p>This is the Matrix homeserver for <strong>${name}</strong> (${SERVER_NAME_TAG} ${escapeHtml(SERVER_VERSION)}).</p>
<p>To chat, point a Matrix client such as Element at this server.</p>
</body></html>
`;
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
};
