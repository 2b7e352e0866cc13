/**
 * Invites across servers, both ways (the spec's "Inviting to a room").
 *
 * Sending: a local user's invite of another server's user is co-signed by
 * that server before we store it (`PUT /_matrix/federation/v2/invite`, or
 * v1 for room versions 1 and 2), with the room's stripped state for the
 * invitee to see. The event must come back the same, signed by the
 * invitee's server. A refusal is the client's answer; an unreachable
 * server is 502, as Synapse answers.
 *
 * Receiving: another server's invite of one of our users is checked (the
 * room version; the invitee ours; the sender of the origin; the event's
 * signatures and hash), signed by us and stored. In a room we hold it is a
 * PDU like any other; in a room we do not, it is an out-of-band membership
 * (an outlier keeping the stripped state in `unsigned.invite_room_state`),
 * which /sync shows as an invite.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { addEventSignature, hashAndSignEvent } from '../../core/event-signing.js';
import { newV1EventId } from '../../core/event-id.js';
import { serverNameOf } from '../../core/event-format.js';
import { isJsonObject } from '../../core/json-values.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { redactWith } from '../../core/redaction.js';
import { roomVersion, type RoomVersion } from '../../core/room-versions.js';
import { MatrixError, forbidden } from '../../matrix-error.js';
import type { Db } from '../../storage/db.js';
import { getEvent } from '../../storage/events.js';
import { currentState } from '../../storage/state.js';
import { getRoom, insertRoomIfMissing, type RoomRow } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import type { Notifier } from '../notifier.js';
import { eventIdOf } from '../rooms/event-builder.js';
import type { EventPipeline } from '../rooms/event-pipeline.js';
import { prejoinState } from '../rooms/prejoin-state.js';
import type { ServerKeys } from '../server-keys.js';
import { FederationRequestError, type FederationClient } from './federation-client.js';
import type { FederationEvents } from './inbound-events.js';
import type { Keyring } from './keyring.js';
import type { RemoteMembership } from './remote-membership.js';
import { assertServerAllowed } from './server-access.js';

export interface FederationInvitesDeps {
  db: Kysely<Schema>;
  pipeline: EventPipeline;
  events: FederationEvents;
  client: Pick<FederationClient, 'request'>;
  keyring: Pick<Keyring, 'verifyJsonSignature'>;
  notifier: Pick<Notifier, 'notifyUsers'>;
  serverName: string;
  keys: ServerKeys;
  blockNonAdminInvites: boolean;
  remote: Pick<RemoteMembership, 'leave' | 'knock'>;
  logger: Logger;
}

const enc = encodeURIComponent;

export class FederationInvites {
  constructor(private readonly d: FederationInvitesDeps) {
    d.pipeline.setInviteCosigner((tx, room, rv, pdu) => this.cosign(tx, room, rv, pdu));
  }

  /** Has the invitee's server sign a local invite (see the file's comment). */
  private async cosign(db: Db, room: RoomRow, rv: RoomVersion, pdu: PDU): Promise<PDU> {
    const invitee = pdu.state_key as string;
    const server = serverNameOf(invitee)!;
    const id = eventIdOf(pdu, rv);
    const strippedState = await prejoinState(db, room.room_id);
    const v1 = rv.id === '1' || rv.id === '2';
    let json: unknown;
    try {
      const res = await this.d.client.request<unknown>({
        destination: server,
        method: 'PUT',
        path: `/_matrix/federation/${v1 ? 'v1' : 'v2'}/invite/${enc(room.room_id)}/${enc(id)}`,
        body: v1 ? { ...pdu, unsigned: { invite_room_state: strippedState } } : { event: pdu, room_version: rv.id, invite_room_state: strippedState },
        timeoutMs: 30_000,
      });
      json = v1 && Array.isArray(res.json) ? res.json[1] : res.json;
    } catch (err) {
      if (err instanceof FederationRequestError && err.status !== undefined && err.status >= 400 && err.status < 500) {
        throw new MatrixError(err.status, err.errcode ?? 'M_FORBIDDEN', err.reason);
      }
      this.d.logger.info({ server, roomId: room.room_id, err: err instanceof Error ? err.message : String(err) }, 'the invitee’s server could not be asked to sign an invite');
      throw new MatrixError(502, 'M_UNKNOWN', `Failed to send the invite to ${server}`);
    }
    const back = isJsonObject(json) ? json['event'] : undefined;
    if (!isJsonObject(back)) throw new MatrixError(502, 'M_UNKNOWN', `${server} answered the invite without an event`);
    const { unsigned: _u, ...returned } = back;
    let sameEvent = false;
    try {
      sameEvent = eventIdOf(returned as unknown as PDU, rv) === id && returned['type'] === pdu.type && returned['state_key'] === invitee;
    } catch {
      sameEvent = false;
    }
    if (!sameEvent) throw new MatrixError(502, 'M_UNKNOWN', `${server} answered the invite with another event`);
    const check = await this.d.keyring.verifyJsonSignature(redactWith(returned, rv), server, {
      atTs: pdu.origin_server_ts,
      minValidUntilTs: rv.enforceKeyValidity ? pdu.origin_server_ts : undefined,
    });
    if (!check.ok) throw new MatrixError(502, 'M_UNKNOWN', `${server} did not sign the invite: ${check.reason}`);
    const signatures = returned['signatures'] as Record<string, Record<string, string>>;
    return { ...pdu, signatures: { ...pdu.signatures, [server]: signatures[server]! } };
  }

  /** PUT /invite (v1: the event is the body; v2: `{event, room_version, invite_room_state}`): our user invited. */
  async receive(origin: string, roomId: string, eventId: string, body: Record<string, unknown>, form: 'v1' | 'v2'): Promise<{ event: Record<string, unknown> }> {
    const raw = form === 'v1' ? body : body['event'];
    const versionId = form === 'v1' ? undefined : body['room_version'];
    if (form === 'v2' && typeof versionId !== 'string') throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing room_version');
    if (!isJsonObject(raw)) throw new MatrixError(400, 'M_BAD_JSON', 'The invite event must be a JSON object');
    const held = await getRoom(this.d.db, roomId);
    const rv = roomVersion(typeof versionId === 'string' ? versionId : (held?.room_version ?? '1'));
    if (!rv) throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${String(versionId)} is not supported`, { room_version: versionId });
    if (held && held.room_version !== rv.id) throw new MatrixError(400, 'M_BAD_JSON', `${roomId} is room version ${held.room_version}`);
    const rawState = form === 'v1' ? (isJsonObject(raw['unsigned']) ? raw['unsigned']['invite_room_state'] : undefined) : body['invite_room_state'];
    const inviteState = Array.isArray(rawState) ? rawState.filter(isJsonObject) : [];

    const v = await this.d.events.verifyOne(raw, rv);
    if (!v.ok) throw new MatrixError(400, 'M_BAD_JSON', v.reason);
    const pdu = v.pdu;
    if (v.eventId !== eventId) throw new MatrixError(400, 'M_BAD_JSON', 'Event ID does not match the one in the path');
    if (pdu.room_id !== roomId) throw new MatrixError(400, 'M_BAD_JSON', 'Event room ID does not match the one in the path');
    if (pdu.type !== 'm.room.member' || pdu.content['membership'] !== 'invite' || typeof pdu.state_key !== 'string')
      throw new MatrixError(400, 'M_BAD_JSON', 'The event is not an invite');
    if (serverNameOf(pdu.state_key) !== this.d.serverName) throw new MatrixError(400, 'M_BAD_JSON', 'The invitee does not belong to this server');
    if (serverNameOf(pdu.sender) !== origin) throw forbidden('The inviter is not of the origin server');
    if (this.d.blockNonAdminInvites) throw forbidden('This server does not accept room invites');

    if (held) await assertServerAllowed(this.d.db, roomId, origin);
    const signed = addEventSignature(pdu, rv.id, this.d.serverName, this.d.keys.current) as PDU;
    const inRoom = held !== undefined && held.current_state_group !== null;
    if (inRoom) {
      const stored = await this.d.events.place(origin, roomId, rv, { eventId, pdu: signed }, { fillGaps: true });
      if (stored?.rejected !== undefined) throw forbidden(stored.rejected);
    } else {
      const create = inviteState.find((e) => e['type'] === 'm.room.create');
      const creator = typeof create?.['sender'] === 'string' ? create['sender'] : pdu.sender;
      const withState = { ...signed, unsigned: { invite_room_state: inviteState } } as unknown as PDU;
      await this.storeOutOfBand(roomId, rv, creator, withState);
    }
    return { event: signed as unknown as Record<string, unknown> };
  }

  /**
   * Rejects an invite (or rescinds a knock) of a room this server is not in:
   * the leave goes through the inviting server (or the room id's), and when
   * none can be reached it is made here, citing the invite, and stays here,
   * as Synapse's out-of-band leave. Either way the user's membership is then
   * the leave.
   */
  async reject(userId: string, roomId: string, content: JsonObject): Promise<string> {
    const room = await getRoom(this.d.db, roomId);
    const rv = room ? roomVersion(room.room_version) : undefined;
    const [row] = await currentState(this.d.db, roomId, [['m.room.member', userId]]);
    const invite = row ? await getEvent(this.d.db, row.event_id) : undefined;
    if (!room || !rv || !invite || (row?.membership !== 'invite' && row?.membership !== 'knock')) throw forbidden(`User ${userId} not in room ${roomId}`);
    const servers = [serverNameOf(invite.sender), roomId.includes(':') ? serverNameOf(roomId) : undefined].filter((s): s is string => s !== undefined);
    let leave: { eventId: string; pdu: PDU };
    try {
      leave = await this.d.remote.leave(userId, roomId, rv, servers, content);
    } catch (err) {
      this.d.logger.info({ roomId, err: err instanceof Error ? err.message : String(err) }, 'no server took the leave; making it here');
      leave = this.localLeave(rv, userId, roomId, invite.event_id, Number(invite.depth), content);
    }
    await this.storeOutOfBand(roomId, rv, room.creator ?? invite.sender, leave.pdu);
    return leave.eventId;
  }

  /**
   * Knocks on a room this server is not in, through `servers`
   * (RemoteMembership.knock), and stores the knock out of band with the
   * resident's stripped state, so it shows in the knocker's /sync `knock`.
   */
  async knock(userId: string, roomId: string, servers: readonly string[], content: JsonObject): Promise<string> {
    const knock = await this.d.remote.knock(userId, roomId, servers, content);
    const stripped = (knock.pdu.unsigned as { knock_room_state?: unknown[] } | undefined)?.knock_room_state ?? [];
    const create = stripped.find((e) => isJsonObject(e) && e['type'] === 'm.room.create');
    const creator = isJsonObject(create) && typeof create['sender'] === 'string' ? create['sender'] : knock.pdu.sender;
    await this.storeOutOfBand(roomId, knock.rv, creator, knock.pdu);
    return knock.eventId;
  }

  /** A leave citing the invite, signed by us, for when the room's servers cannot be reached. */
  private localLeave(rv: RoomVersion, userId: string, roomId: string, inviteId: string, depth: number, content: JsonObject): { eventId: string; pdu: PDU } {
    const refs = rv.eventIdListsOnly ? [inviteId] : [[inviteId, {}] as [string, JsonObject]];
    const event: PDU = {
      room_id: roomId,
      sender: userId,
      type: 'm.room.member',
      state_key: userId,
      content: { ...content, membership: 'leave' },
      prev_events: refs,
      auth_events: refs,
      depth: depth + 1,
      origin_server_ts: Date.now(),
    };
    if (rv.eventIdFormat === 'v1') {
      event.origin = this.d.serverName;
      event.event_id = newV1EventId(this.d.serverName);
    }
    const pdu = hashAndSignEvent(event, rv.id, this.d.serverName, this.d.keys.current) as PDU;
    return { eventId: eventIdOf(pdu, rv), pdu };
  }

  /** An out-of-band membership stored (the room's row made if need be) and the user woken. */
  private async storeOutOfBand(roomId: string, rv: RoomVersion, creator: string, pdu: PDU): Promise<void> {
    await this.d.pipeline.inRoomQueue(roomId, () =>
      this.d.pipeline.transaction(async (tx) => {
        await insertRoomIfMissing(tx, { roomId, version: rv.id, creator, now: Date.now() });
        const room = (await getRoom(tx, roomId))!;
        await this.d.pipeline.persister.persist(tx, room, pdu, { outOfBand: true });
      }),
    );
    this.d.notifier.notifyUsers([pdu.state_key as string]);
  }
}
