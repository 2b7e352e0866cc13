/**
 * History this server does not hold, fetched from the room's other servers
 * (`GET /_matrix/federation/v1/backfill`): when a client pages back past
 * the oldest event we hold in a room we joined over federation, the events
 * before our backward extremities are asked for, verified and stored as
 * backfilled (ordered before every live event, so /sync never shows them
 * as new). The oldest of a batch is placed on the state at its prev events,
 * which FederationEvents fetches (`/state`).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { isJsonObject } from '../../core/json-values.js';
import { roomVersion } from '../../core/room-versions.js';
import { joinedServers } from '../../storage/memberships.js';
import { backwardExtremities, getRoom } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import type { FederationClient } from './federation-client.js';
import type { FederationEvents } from './inbound-events.js';

/** Synapse serves at most 100 events per /backfill. */
const MAX_BACKFILL = 100;
/** Backward extremities named in one request. */
const MAX_EXTREMITIES = 5;

export interface FederationBackfillDeps {
  db: Kysely<Schema>;
  events: FederationEvents;
  client: Pick<FederationClient, 'request'>;
  serverName: string;
  logger: Logger;
}

export class FederationBackfill {
  constructor(private readonly d: FederationBackfillDeps) {}

  /** Fetches up to `limit` events from before the history held here; returns how many were stored. */
  async backfill(roomId: string, limit: number): Promise<number> {
    const room = await getRoom(this.d.db, roomId);
    const rv = room ? roomVersion(room.room_version) : undefined;
    if (!room || !rv) return 0;
    const extremities = await backwardExtremities(this.d.db, roomId, MAX_EXTREMITIES);
    if (extremities.length === 0) return 0;
    const servers = (await joinedServers(this.d.db, roomId)).filter((s) => s !== this.d.serverName);
    for (const server of servers) {
      let pdus: unknown[];
      try {
        const res = await this.d.client.request<unknown>({
          destination: server,
          method: 'GET',
          path: `/_matrix/federation/v1/backfill/${encodeURIComponent(roomId)}`,
          query: { v: extremities, limit: Math.max(1, Math.min(limit, MAX_BACKFILL)) },
          timeoutMs: 30_000,
        });
        pdus = isJsonObject(res.json) && Array.isArray(res.json['pdus']) ? res.json['pdus'] : [];
      } catch (err) {
        this.d.logger.info({ server, roomId, err: err instanceof Error ? err.message : String(err) }, 'backfill from this server failed; trying the next');
        continue;
      }
      const events = (await this.d.events.verifyAll(pdus, rv, roomId)).sort((x, y) => x.pdu.depth - y.pdu.depth);
      let stored = 0;
      for (const e of events) {
        try {
          if (await this.d.events.place(server, roomId, rv, e, { fillGaps: false, backfilled: true })) stored++;
        } catch (err) {
          this.d.logger.info({ server, roomId, eventId: e.eventId, err: err instanceof Error ? err.message : String(err) }, 'could not store a backfilled event');
        }
      }
      return stored;
    }
    return 0;
  }
}
