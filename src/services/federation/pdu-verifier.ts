/**
 * The first three checks the spec makes on every PDU received over
 * federation ("Checks performed on receipt of a PDU"), before the event
 * touches a room:
 * 1. it is a well-formed event of the room's version (size, ids, fields),
 *    else it is dropped;
 * 2. it carries valid signatures of every server that must sign it (the
 *    sender's; in v1/v2 also the event id's; for a restricted join also the
 *    authorising user's), with keys the keyring can have at the event's
 *    time (room versions 5+: keys valid at `origin_server_ts`), else it is
 *    dropped;
 * 3. its content hash matches, else it goes on in its redacted form.
 * The auth checks (4–6) are the persister's. `unsigned` is what the sending
 * server adds outside the signature; it is not kept.
 */
import { checkEventSignatures, requiredSigningServers, type ServerKeys } from '../../core/event-signing.js';
import { validateEventFormat } from '../../core/event-format.js';
import { eventId as computeEventId } from '../../core/event-id.js';
import { checkContentHash } from '../../core/hashes.js';
import { isJsonObject } from '../../core/json-values.js';
import type { PDU } from '../../core/pdu.js';
import { redactWith } from '../../core/redaction.js';
import type { RoomVersion } from '../../core/room-versions.js';
import type { Keyring } from './keyring.js';

export type VerifiedPdu = { ok: true; pdu: PDU; eventId: string; redacted: boolean } | { ok: false; reason: string; eventId?: string };

export class PduVerifier {
  constructor(private readonly keyring: Pick<Keyring, 'verifyKey'>) {}

  /** Checks 1–3 on a PDU as received; never throws for anything in the PDU. */
  async verify(raw: unknown, rv: RoomVersion): Promise<VerifiedPdu> {
    if (!isJsonObject(raw)) return { ok: false, reason: 'the PDU is not a JSON object' };
    const { unsigned: _unsigned, ...event } = raw;
    let id: string | undefined;
    try {
      id = computeEventId(event, rv.id);
    } catch (err) {
      return { ok: false, reason: `no event id can be had: ${err instanceof Error ? err.message : String(err)}` };
    }
    const problems = validateEventFormat(event, rv.id);
    if (problems.length > 0) return { ok: false, eventId: id, reason: `malformed event: ${problems.map((p) => `${p.path || 'event'} ${p.message}`).join('; ')}` };
    const keys = await this.keysFor(event, rv);
    if (typeof keys === 'string') return { ok: false, eventId: id, reason: keys };
    const signatures = checkEventSignatures(event, rv.id, (server) => keys.get(server));
    if (!signatures.ok) return { ok: false, eventId: id, reason: signatures.reason };
    if (checkContentHash(event)) return { ok: true, pdu: event as unknown as PDU, eventId: id, redacted: false };
    return { ok: true, pdu: redactWith(event, rv) as unknown as PDU, eventId: id, redacted: true };
  }

  /** The keys of each server that must sign, for the key ids it signed with; a reason when none can be had. */
  private async keysFor(event: Record<string, unknown>, rv: RoomVersion): Promise<Map<string, ServerKeys> | string> {
    let servers: string[];
    try {
      servers = requiredSigningServers(event, rv.id);
    } catch (err) {
      return err instanceof Error ? err.message : 'the signing servers cannot be found';
    }
    const ts = typeof event['origin_server_ts'] === 'number' ? event['origin_server_ts'] : undefined;
    const opts = { atTs: ts, minValidUntilTs: rv.enforceKeyValidity ? ts : undefined };
    const signatures = isJsonObject(event['signatures']) ? event['signatures'] : {};
    const out = new Map<string, ServerKeys>();
    await Promise.all(
      servers.map(async (server) => {
        const sigs = Object.prototype.hasOwnProperty.call(signatures, server) ? signatures[server] : undefined;
        const keyIds = isJsonObject(sigs) ? Object.keys(sigs).filter((k) => k.startsWith('ed25519:')) : [];
        const found = new Map<string, Uint8Array>();
        for (const keyId of keyIds) {
          const key = await this.keyring.verifyKey(server, keyId, opts);
          if (key) found.set(keyId, key);
        }
        out.set(server, found);
      }),
    );
    return out;
  }
}
