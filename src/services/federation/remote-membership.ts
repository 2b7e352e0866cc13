/**
 * Joining a room this server is not in, through a server that is
 * (`make_join`, then `send_join` v2), as the spec's "Joining rooms" has it:
 * each candidate server is tried in turn; the template it answers is
 * completed (our user's profile, the time, v1/v2 an event id of ours),
 * hashed and signed; the state and auth chain `send_join` answers are
 * verified PDU by PDU (FederationEvents) and, with the join on top,
 * stored in one transaction: the room's row, the state and auth chain as
 * outliers, the join with that state before it. Nothing is stored unless
 * all of it is.
 *
 * Failing over as Synapse does: a server that cannot be reached, answers
 * 5xx, or says it is not in the room (M_NOT_FOUND,
 * M_UNABLE_TO_AUTHORISE_JOIN) is passed over; any other refusal (403, an
 * incompatible room version) is the answer.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { hashAndSignEvent } from '../../core/event-signing.js';
import { newV1EventId } from '../../core/event-id.js';
import { isJsonObject } from '../../core/json-values.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { ROOM_VERSIONS, roomVersion, type RoomVersion } from '../../core/room-versions.js';
import { MatrixError, forbidden } from '../../matrix-error.js';
import { getRoom, insertRoomIfMissing } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { getProfile } from '../../storage/users.js';
import { eventIdOf } from '../rooms/event-builder.js';
import type { EventPipeline } from '../rooms/event-pipeline.js';
import type { StateMap } from '../rooms/state-resolution.js';
import type { ServerKeys } from '../server-keys.js';
import { FederationRequestError, type FederationClient } from './federation-client.js';
import type { FederationEvents, IdentifiedPdu } from './inbound-events.js';

export interface RemoteMembershipDeps {
  db: Kysely<Schema>;
  pipeline: EventPipeline;
  events: FederationEvents;
  client: Pick<FederationClient, 'request'>;
  serverName: string;
  keys: ServerKeys;
  logger: Logger;
}

const FAILOVER_ERRCODES = new Set(['M_NOT_FOUND', 'M_UNABLE_TO_AUTHORISE_JOIN']);
/** The state of a large room with its auth chain (a 10,000-member room is ~10 MB). */
const SEND_JOIN_MAX_BYTES = 64 * 1024 * 1024;
const enc = encodeURIComponent;

/** Whether a failed request to one candidate server should give way to the next one. */
function failsOver(err: unknown): boolean {
  if (!(err instanceof FederationRequestError)) return true;
  if (err.status === undefined || err.status >= 500) return true;
  return err.errcode !== undefined && FAILOVER_ERRCODES.has(err.errcode);
}

/** The remote server's refusal, as the client sees it. */
function asClientError(err: FederationRequestError): MatrixError {
  const status = err.status !== undefined && err.status >= 400 && err.status < 500 ? err.status : 502;
  return new MatrixError(status, err.errcode ?? 'M_UNKNOWN', err.reason);
}

export class RemoteMembership {
  constructor(private readonly d: RemoteMembershipDeps) {}

  /** Joins `userId` (ours) to `roomId` through the first of `servers` that can do it; returns the join's event id. */
  async join(userId: string, roomId: string, servers: readonly string[], extra: JsonObject = {}): Promise<string> {
    const candidates = [...new Set(servers)].filter((s) => s !== this.d.serverName);
    if (candidates.length === 0) throw new MatrixError(404, 'M_NOT_FOUND', 'No known servers');
    let last: unknown;
    for (const server of candidates) {
      try {
        return await this.joinVia(server, userId, roomId, extra);
      } catch (err) {
        if (err instanceof MatrixError) throw err;
        if (!failsOver(err)) throw asClientError(err as FederationRequestError);
        last = err;
        this.d.logger.info({ server, roomId, err: err instanceof Error ? err.message : String(err) }, 'joining through this server failed; trying the next');
      }
    }
    if (last instanceof FederationRequestError && last.status !== undefined && last.status < 500) throw asClientError(last);
    throw new MatrixError(502, 'M_UNKNOWN', 'Failed to make_join via any server');
  }

  private async joinVia(server: string, userId: string, roomId: string, extra: JsonObject): Promise<string> {
    const made = await this.d.client.request<unknown>({
      destination: server,
      method: 'GET',
      path: `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(userId)}`,
      query: { ver: [...ROOM_VERSIONS.keys()] },
      timeoutMs: 30_000,
    });
    const body = isJsonObject(made.json) ? made.json : {};
    const rv = typeof body['room_version'] === 'string' ? roomVersion(body['room_version']) : roomVersion('1');
    if (!rv) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${String(body['room_version'])} is not supported`);
    const signed = await this.completeTemplate(body['event'], rv, userId, roomId, extra, 'join');
    if (!signed) throw new FederationRequestError({ destination: server, reason: 'make_join answered no usable template' });
    const eventId = eventIdOf(signed, rv);
    const sent = await this.d.client.request<unknown>({
      destination: server,
      method: 'PUT',
      path: `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(eventId)}`,
      body: signed,
      timeoutMs: 120_000,
      maxBytes: SEND_JOIN_MAX_BYTES,
    });
    const answer = isJsonObject(sent.json) ? sent.json : {};
    return this.storeJoin(server, roomId, rv, { eventId, pdu: signed }, answer);
  }

  /**
   * Leaves (rejects an invite to, rescinds a knock on) a room this server is
   * not in, through the first of `servers` that takes it (make_leave, then
   * send_leave v2). Returns the leave event, for the caller to store; throws
   * when no server took it.
   */
  async leave(userId: string, roomId: string, rv: RoomVersion, servers: readonly string[], extra: JsonObject = {}): Promise<IdentifiedPdu> {
    const candidates = [...new Set(servers)].filter((s) => s !== this.d.serverName);
    let last: unknown = new MatrixError(404, 'M_NOT_FOUND', 'No known servers');
    for (const server of candidates) {
      try {
        const made = await this.d.client.request<unknown>({
          destination: server,
          method: 'GET',
          path: `/_matrix/federation/v1/make_leave/${enc(roomId)}/${enc(userId)}`,
          timeoutMs: 30_000,
        });
        const body = isJsonObject(made.json) ? made.json : {};
        const signed = await this.completeTemplate(body['event'], rv, userId, roomId, extra, 'leave');
        if (!signed) throw new FederationRequestError({ destination: server, reason: 'make_leave answered no usable template' });
        const eventId = eventIdOf(signed, rv);
        await this.d.client.request<unknown>({
          destination: server,
          method: 'PUT',
          path: `/_matrix/federation/v2/send_leave/${enc(roomId)}/${enc(eventId)}`,
          body: signed,
          timeoutMs: 30_000,
        });
        return { eventId, pdu: signed };
      } catch (err) {
        last = err;
        this.d.logger.info({ server, roomId, err: err instanceof Error ? err.message : String(err) }, 'leaving through this server failed');
      }
    }
    throw last;
  }

  /** The member event from a make_join/make_leave template: ours to fill in and sign, its DAG place the resident's. */
  /**
   * Knocks `userId` (ours) on `roomId` through the first of `servers` that
   * takes it (make_knock with the versions we know, then send_knock v1).
   * Returns the knock with the resident's stripped state in
   * `unsigned.knock_room_state`, for the caller to store out of band.
   */
  async knock(userId: string, roomId: string, servers: readonly string[], extra: JsonObject = {}): Promise<IdentifiedPdu & { rv: RoomVersion }> {
    const candidates = [...new Set(servers)].filter((s) => s !== this.d.serverName);
    if (candidates.length === 0) throw new MatrixError(404, 'M_NOT_FOUND', 'No known servers');
    let last: unknown;
    for (const server of candidates) {
      try {
        const made = await this.d.client.request<unknown>({
          destination: server,
          method: 'GET',
          path: `/_matrix/federation/v1/make_knock/${enc(roomId)}/${enc(userId)}`,
          query: { ver: [...ROOM_VERSIONS.keys()] },
          timeoutMs: 30_000,
        });
        const body = isJsonObject(made.json) ? made.json : {};
        const rv = typeof body['room_version'] === 'string' ? roomVersion(body['room_version']) : undefined;
        if (!rv) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${String(body['room_version'])} is not supported`);
        if (!rv.knockJoinRule) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${rv.id} does not support knocking`);
        const signed = await this.completeTemplate(body['event'], rv, userId, roomId, extra, 'knock');
        if (!signed) throw new FederationRequestError({ destination: server, reason: 'make_knock answered no usable template' });
        const eventId = eventIdOf(signed, rv);
        const sent = await this.d.client.request<unknown>({
          destination: server,
          method: 'PUT',
          path: `/_matrix/federation/v1/send_knock/${enc(roomId)}/${enc(eventId)}`,
          body: signed,
          timeoutMs: 60_000,
        });
        const answer = isJsonObject(sent.json) ? sent.json : {};
        const stripped = Array.isArray(answer['knock_room_state']) ? answer['knock_room_state'].filter(isJsonObject) : [];
        return { eventId, pdu: { ...signed, unsigned: { knock_room_state: stripped } } as unknown as PDU, rv };
      } catch (err) {
        if (err instanceof MatrixError) throw err;
        if (!failsOver(err)) throw asClientError(err as FederationRequestError);
        last = err;
        this.d.logger.info({ server, roomId, err: err instanceof Error ? err.message : String(err) }, 'knocking through this server failed; trying the next');
      }
    }
    if (last instanceof FederationRequestError && last.status !== undefined && last.status < 500) throw asClientError(last);
    throw new MatrixError(502, 'M_UNKNOWN', 'Failed to make_knock via any server');
  }

  private async completeTemplate(
    template: unknown,
    rv: RoomVersion,
    userId: string,
    roomId: string,
    extra: JsonObject,
    membership: 'join' | 'leave' | 'knock',
  ): Promise<PDU | undefined> {
    if (!isJsonObject(template)) return undefined;
    const { prev_events: prev, auth_events: auth, depth } = template;
    if (!Array.isArray(prev) || !Array.isArray(auth) || typeof depth !== 'number') return undefined;
    const given = isJsonObject(template['content']) ? (template['content'] as JsonObject) : {};
    const content: JsonObject = { ...extra, membership };
    if (membership === 'join') {
      const via = given['join_authorised_via_users_server'];
      if (typeof via === 'string') content['join_authorised_via_users_server'] = via;
      const profile = await getProfile(this.d.db, userId);
      if (profile?.displayname && content['displayname'] === undefined) content['displayname'] = profile.displayname;
      if (profile?.avatar_url && content['avatar_url'] === undefined) content['avatar_url'] = profile.avatar_url;
    }
    const event: PDU = {
      room_id: roomId,
      sender: userId,
      type: 'm.room.member',
      state_key: userId,
      content,
      prev_events: prev as PDU['prev_events'],
      auth_events: auth as PDU['auth_events'],
      depth,
      origin_server_ts: Date.now(),
    };
    if (rv.eventIdFormat === 'v1') {
      event.origin = this.d.serverName;
      event.event_id = newV1EventId(this.d.serverName);
    }
    return hashAndSignEvent(event, rv.id, this.d.serverName, this.d.keys.current) as PDU;
  }

  /** Verifies send_join's answer and stores the room as it gave it, with our join on top, in one transaction. */
  private async storeJoin(server: string, roomId: string, rv: RoomVersion, ours: IdentifiedPdu, answer: Record<string, unknown>): Promise<string> {
    const rawState = Array.isArray(answer['state']) ? answer['state'] : [];
    const rawChain = Array.isArray(answer['auth_chain']) ? answer['auth_chain'] : [];
    const [state, chain] = await Promise.all([this.d.events.verifyAll(rawState, rv, roomId), this.d.events.verifyAll(rawChain, rv, roomId)]);
    const create = state.find((e) => e.pdu.type === 'm.room.create' && e.pdu.state_key === '');
    if (!create) throw new FederationRequestError({ destination: server, reason: 'send_join answered a state without a create event' });
    const createVersion = create.pdu.content['room_version'] ?? '1';
    if (createVersion !== rv.id)
      throw new FederationRequestError({ destination: server, reason: `the create event names room version ${String(createVersion)}, make_join ${rv.id}` });
    if (rv.roomIdFromCreateEvent && roomId !== `!${create.eventId.slice(1)}`)
      throw new FederationRequestError({ destination: server, reason: 'the create event is not this room’s' });
    let join = ours;
    // A restricted join comes back with the resident's signature added: the same event, signed once more.
    if (isJsonObject(answer['event'])) {
      const back = await this.d.events.verifyOne(answer['event'], rv);
      if (back.ok && back.eventId === ours.eventId) join = { eventId: back.eventId, pdu: back.pdu };
    }
    return this.d.pipeline.inRoomQueue(roomId, () =>
      this.d.pipeline.transaction(async (tx) => {
        await insertRoomIfMissing(tx, { roomId, version: rv.id, creator: create.pdu.sender, now: Date.now() });
        const room = (await getRoom(tx, roomId))!;
        if (room.room_version !== rv.id) throw new MatrixError(400, 'M_BAD_STATE', `This server knows ${roomId} as room version ${room.room_version}`);
        const rejected = await this.d.events.storeOutliersIn(tx, room, [...chain, ...state]);
        const stateBefore: StateMap = new Map();
        for (const e of state) {
          if (e.pdu.state_key === undefined || rejected.get(e.eventId) !== undefined) continue;
          stateBefore.set(`${e.pdu.type}\u0000${e.pdu.state_key}`, e.eventId);
        }
        const persisted = await this.d.pipeline.persister.persist(tx, room, join.pdu, { stateBefore });
        if (persisted.rejected !== undefined) throw forbidden(`The join was not allowed by the room's state: ${persisted.rejected}`);
        return persisted.eventId;
      }),
    );
  }
}
