/** GET /_matrix/client/versions: the spec versions we speak. */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

// Every published client-server spec version; clients pick the newest they know.
export const CLIENT_SPEC_VERSIONS = [
  'r0.0.1',
  'r0.1.0',
  'r0.2.0',
  'r0.3.0',
  'r0.4.0',
  'r0.5.0',
  'r0.6.0',
  'r0.6.1',
  'v1.1',
  'v1.2',
  'v1.3',
  'v1.4',
  'v1.5',
  'v1.6',
  'v1.7',
  'v1.8',
  'v1.9',
  'v1.10',
  'v1.11',
  'v1.12',
] as const;

export const versionsPlugin: FastifyPluginAsync<PluginOptions> = async (app) => {
  const body = { versions: CLIENT_SPEC_VERSIONS, unstable_features: {} as Record<string, boolean> };
  app.get('/_matrix/client/versions', async () => body);
};
