/** Send-to-device messaging: PUT /sendToDevice/{eventType}/{txnId}. */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';

export const toDevicePlugin: FastifyPluginAsync<PluginOptions> = async () => {
  // Filled in by the work on issue 6.
};
