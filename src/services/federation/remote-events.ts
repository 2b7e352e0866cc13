/**
 * Asking another server for events of a room: the gap before an event
 * (`get_missing_events`), the state at an event (`/state`), an event's
 * auth chain (`/event_auth`) and one event (`/event`). Answers are checked
 * for shape only: every PDU in them still goes through PduVerifier and the
 * persister. Each call is bounded in time and bytes.
 */
import { isJsonObject } from '../../core/json-values.js';
import type { FederationClient } from './federation-client.js';

/** Most events asked for in one get_missing_events (Synapse asks for 10; it serves at most 20). */
export const MISSING_EVENTS_LIMIT = 10;
const TIMEOUT_MS = 30_000;
/** A room's state with its auth chain can be large; a 10,000-member room is ~10 MB. */
const STATE_MAX_BYTES = 64 * 1024 * 1024;

const enc = encodeURIComponent;

function pdusOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export class RemoteEvents {
  constructor(private readonly client: Pick<FederationClient, 'request'>) {}

  async missingEvents(destination: string, roomId: string, earliest: string[], latest: string[], minDepth: number): Promise<unknown[]> {
    const res = await this.client.request<unknown>({
      destination,
      method: 'POST',
      path: `/_matrix/federation/v1/get_missing_events/${enc(roomId)}`,
      body: { earliest_events: earliest, latest_events: latest, limit: MISSING_EVENTS_LIMIT, min_depth: minDepth },
      timeoutMs: TIMEOUT_MS,
    });
    return isJsonObject(res.json) ? pdusOf(res.json['events']) : [];
  }

  /** The state before `eventId` and its auth chain. */
  async stateAt(destination: string, roomId: string, eventId: string): Promise<{ pdus: unknown[]; authChain: unknown[] }> {
    const res = await this.client.request<unknown>({
      destination,
      method: 'GET',
      path: `/_matrix/federation/v1/state/${enc(roomId)}`,
      query: { event_id: eventId },
      timeoutMs: 60_000,
      maxBytes: STATE_MAX_BYTES,
    });
    const body = isJsonObject(res.json) ? res.json : {};
    return { pdus: pdusOf(body['pdus']), authChain: pdusOf(body['auth_chain']) };
  }

  async eventAuth(destination: string, roomId: string, eventId: string): Promise<unknown[]> {
    const res = await this.client.request<unknown>({
      destination,
      method: 'GET',
      path: `/_matrix/federation/v1/event_auth/${enc(roomId)}/${enc(eventId)}`,
      timeoutMs: TIMEOUT_MS,
      maxBytes: STATE_MAX_BYTES,
    });
    return isJsonObject(res.json) ? pdusOf(res.json['auth_chain']) : [];
  }

  async event(destination: string, eventId: string): Promise<unknown> {
    const res = await this.client.request<unknown>({ destination, method: 'GET', path: `/_matrix/federation/v1/event/${enc(eventId)}`, timeoutMs: TIMEOUT_MS });
    const pdus = isJsonObject(res.json) ? pdusOf(res.json['pdus']) : [];
    return pdus[0];
  }
}
