/**
 * Asking another server for events of a room: the gap before an event
 * (`get_missing_events`), the state at an event (`/state`), an event's
 * auth chain (`/event_auth`) and one event (`/event`). Answers are checked
 * for shape only: every PDU in them still goes through PduVerifier and the
 * persister. Each call is bounded in time and bytes.
 *
 * A get_missing_events answer is cut to the limit asked for (the events
 * nearest the PDU, by depth, are kept). A request that got no answer (timed
 * out, or could not reach its server) makes the next ones of that kind to
 * that server fail at once for a while (UNANSWERED_BACKOFF_MS), so that a transaction
 * of 50 PDUs with gaps does not wait out the timeouts 50 times: a PDU whose
 * gap cannot be had falls back to the state, or fails with its reason.
 */
import { isJsonObject } from '../../core/json-values.js';
import { FederationRequestError, type FederationClient, type FederationRequestOptions, type FederationResponse } from './federation-client.js';

/** Most events asked for in one get_missing_events (Synapse asks for 10; it serves at most 20). */
export const MISSING_EVENTS_LIMIT = 10;
const TIMEOUT_MS = 30_000;
/** How long a server that left a request unanswered is not asked again. */
const UNANSWERED_BACKOFF_MS = 60_000;
/** A room's state with its auth chain can be large; a 10,000-member room is ~10 MB. */
const STATE_MAX_BYTES = 64 * 1024 * 1024;

const enc = encodeURIComponent;

function pdusOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function depthOf(raw: unknown): number {
  const d = isJsonObject(raw) ? raw['depth'] : undefined;
  return typeof d === 'number' ? d : -Infinity;
}

export class RemoteEvents {
  /** (destination, kind of request) left unanswered: until when it is not asked again. */
  private readonly unanswered = new Map<string, number>();

  constructor(
    private readonly client: Pick<FederationClient, 'request'>,
    private readonly now: () => number = Date.now,
  ) {}

  /** The events between `earliest` and `latest` (at most MISSING_EVENTS_LIMIT, whatever the server sends). */
  async missingEvents(destination: string, roomId: string, earliest: string[], latest: string[], minDepth: number): Promise<unknown[]> {
    const res = await this.request(destination, 'get_missing_events', {
      method: 'POST',
      path: `/_matrix/federation/v1/get_missing_events/${enc(roomId)}`,
      body: { earliest_events: earliest, latest_events: latest, limit: MISSING_EVENTS_LIMIT, min_depth: minDepth },
      timeoutMs: TIMEOUT_MS,
    });
    const events = isJsonObject(res.json) ? pdusOf(res.json['events']) : [];
    if (events.length <= MISSING_EVENTS_LIMIT) return events;
    return [...events].sort((x, y) => depthOf(y) - depthOf(x)).slice(0, MISSING_EVENTS_LIMIT);
  }

  /** The state before `eventId` and its auth chain. */
  async stateAt(destination: string, roomId: string, eventId: string): Promise<{ pdus: unknown[]; authChain: unknown[] }> {
    const res = await this.request(destination, 'state', {
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
    const res = await this.request(destination, 'event_auth', {
      method: 'GET',
      path: `/_matrix/federation/v1/event_auth/${enc(roomId)}/${enc(eventId)}`,
      timeoutMs: TIMEOUT_MS,
      maxBytes: STATE_MAX_BYTES,
    });
    return isJsonObject(res.json) ? pdusOf(res.json['auth_chain']) : [];
  }

  async event(destination: string, eventId: string): Promise<unknown> {
    const res = await this.request(destination, 'event', { method: 'GET', path: `/_matrix/federation/v1/event/${enc(eventId)}`, timeoutMs: TIMEOUT_MS });
    const pdus = isJsonObject(res.json) ? pdusOf(res.json['pdus']) : [];
    return pdus[0];
  }

  /** One request to `destination`, refused at once while its kind is backed off there; one left unanswered backs it off. */
  private async request(destination: string, kind: string, r: Omit<FederationRequestOptions, 'destination'>): Promise<FederationResponse<unknown>> {
    const key = `${destination}\u0000${kind}`;
    const until = this.unanswered.get(key);
    if (until !== undefined) {
      if (this.now() < until) throw new Error(`${destination} left a ${kind} request unanswered recently; not asking it again yet`);
      this.unanswered.delete(key);
    }
    try {
      return await this.client.request<unknown>({ ...r, destination });
    } catch (err) {
      // No answer at all (a timeout, a refused connection); an error answer came quickly and is not held against it.
      if (err instanceof FederationRequestError && err.status === undefined) this.unanswered.set(key, this.now() + UNANSWERED_BACKOFF_MS);
      throw err;
    }
  }
}
