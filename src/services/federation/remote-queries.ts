/**
 * The federation query API as a client of other servers: a remote user's
 * profile (`/query/profile`) and a remote room alias (`/query/directory`).
 * Failures take Synapse's shapes: the remote's 404 is ours, an answer we
 * cannot use or a server we cannot reach is 502.
 */
import type { Logger } from 'pino';
import { MatrixError } from '../../matrix-error.js';
import { FederationRequestError, type FederationClient } from './federation-client.js';

export interface RemoteProfile {
  displayname: string | null;
  avatar_url: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export class RemoteQueries {
  constructor(private readonly o: { client: Pick<FederationClient, 'request'>; logger: Logger }) {}

  /** GET /_matrix/federation/v1/query/{type} on `destination`; a 404 there is `notFound`, other failures 502 `failure`. */
  private async query(destination: string, type: string, args: Record<string, string>, notFound: () => MatrixError, failure: string): Promise<Record<string, unknown>> {
    try {
      const res = await this.o.client.request<unknown>({ destination, method: 'GET', path: `/_matrix/federation/v1/query/${type}`, query: args, timeoutMs: 30_000 });
      if (res.json === null || typeof res.json !== 'object' || Array.isArray(res.json)) throw new MatrixError(502, 'M_UNKNOWN', failure);
      return res.json as Record<string, unknown>;
    } catch (err) {
      if (err instanceof MatrixError) throw err;
      if (err instanceof FederationRequestError) {
        if (err.status === 404) throw notFound();
        this.o.logger.info({ destination, query: type, status: err.status, errcode: err.errcode, reason: err.reason }, 'federation query failed');
        throw new MatrixError(502, 'M_UNKNOWN', failure);
      }
      throw err;
    }
  }

  /**
   * Another server's public room list (POST /publicRooms, as Synapse asks;
   * GET for a server that does not take the POST). The remote's refusal is
   * the answer; a server that cannot be reached is 502.
   */
  async publicRooms(
    server: string,
    req: { limit?: number; since?: string; search?: string; roomTypes?: (string | null)[]; thirdPartyInstanceId?: string },
  ): Promise<Record<string, unknown>> {
    const body: Record<string, unknown> = {};
    if (req.limit !== undefined) body['limit'] = req.limit;
    if (req.since !== undefined) body['since'] = req.since;
    if (req.search !== undefined || req.roomTypes !== undefined)
      body['filter'] = { ...(req.search !== undefined && { generic_search_term: req.search }), ...(req.roomTypes !== undefined && { room_types: req.roomTypes }) };
    if (req.thirdPartyInstanceId !== undefined) body['third_party_instance_id'] = req.thirdPartyInstanceId;
    const ask = async (method: 'GET' | 'POST') => {
      const query = method === 'GET' ? { limit: req.limit, since: req.since, third_party_instance_id: req.thirdPartyInstanceId } : undefined;
      const res = await this.o.client.request<unknown>({
        destination: server,
        method,
        path: '/_matrix/federation/v1/publicRooms',
        query,
        ...(method === 'POST' && { body }),
        timeoutMs: 30_000,
      });
      if (res.json === null || typeof res.json !== 'object' || Array.isArray(res.json)) throw new MatrixError(502, 'M_UNKNOWN', 'Failed to fetch room directory');
      return res.json as Record<string, unknown>;
    };
    try {
      try {
        return await ask('POST');
      } catch (err) {
        // An older server without the POST: the GET (which cannot filter).
        if (err instanceof FederationRequestError && (err.status === 404 || err.status === 405) && err.errcode === 'M_UNRECOGNIZED' && body['filter'] === undefined)
          return await ask('GET');
        throw err;
      }
    } catch (err) {
      if (err instanceof MatrixError) throw err;
      if (err instanceof FederationRequestError) {
        if (err.status !== undefined && err.status >= 400 && err.status < 500) throw new MatrixError(err.status, err.errcode ?? 'M_UNKNOWN', err.reason);
        this.o.logger.info({ destination: server, status: err.status, reason: err.reason }, 'fetching a remote room directory failed');
        throw new MatrixError(502, 'M_UNKNOWN', 'Failed to fetch room directory');
      }
      throw err;
    }
  }

  /** A user's profile from their own server. */
  async profile(userId: string, server: string, notFound: () => MatrixError): Promise<RemoteProfile> {
    const body = await this.query(server, 'profile', { user_id: userId }, notFound, 'Failed to fetch profile');
    return { displayname: str(body['displayname']), avatar_url: str(body['avatar_url']) };
  }

  /** An alias's room and servers from the alias's server. */
  async directory(alias: string, server: string, notFound: () => MatrixError): Promise<{ room_id: string; servers: string[] }> {
    const body = await this.query(server, 'directory', { room_alias: alias }, notFound, 'Failed to fetch alias');
    const roomId = body['room_id'];
    const servers = body['servers'];
    if (typeof roomId !== 'string' || !Array.isArray(servers)) throw new MatrixError(502, 'M_UNKNOWN', 'Failed to fetch alias');
    return { room_id: roomId, servers: servers.filter((s): s is string => typeof s === 'string') };
  }
}
