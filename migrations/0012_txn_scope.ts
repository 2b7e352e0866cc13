/**
 * 0012: transaction ids scoped to the endpoint as well as the device (the
 * spec: a retransmission is the same txn id on the same path).
 * `event_txn_ids.scope` holds the path without its version prefix and txn
 * id: `/rooms/{roomId}/send/{eventType}` or
 * `/rooms/{roomId}/redact/{eventId}`; the key becomes (user_id, device_id,
 * txn_id, scope), so lookups by (user, device, txn id) still use its prefix.
 *
 * Existing rows: /send ids take their event's room and type; redactions,
 * which were stored as `US redact US room US redact US event US redact US
 * txn` (US = U+001F), get their scope and plain txn id back.
 */
import { type Kysely, sql } from 'kysely';

const MARK = sql`(chr(31) || 'redact' || chr(31))`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE event_txn_ids ADD COLUMN scope text NOT NULL DEFAULT ''`.execute(db);
  await sql`ALTER TABLE event_txn_ids DROP CONSTRAINT event_txn_ids_pk`.execute(db);
  await sql`
    UPDATE event_txn_ids
    SET scope = '/rooms/' || split_part(txn_id, ${MARK}, 2) || '/redact/' || split_part(txn_id, ${MARK}, 3),
        txn_id = substr(txn_id, 3 * char_length(${MARK}) + char_length(split_part(txn_id, ${MARK}, 2)) + char_length(split_part(txn_id, ${MARK}, 3)) + 1)
    WHERE starts_with(txn_id, ${MARK})`.execute(db);
  await sql`
    UPDATE event_txn_ids t SET scope = '/rooms/' || e.room_id || '/send/' || e.type
    FROM events e WHERE e.event_id = t.event_id AND t.scope = ''`.execute(db);
  await sql`ALTER TABLE event_txn_ids ADD CONSTRAINT event_txn_ids_pk PRIMARY KEY (user_id, device_id, txn_id, scope)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE event_txn_ids DROP CONSTRAINT event_txn_ids_pk`.execute(db);
  await sql`
    UPDATE event_txn_ids
    SET txn_id = ${MARK} || split_part(scope, '/', 3) || ${MARK} || substr(scope, char_length('/rooms/' || split_part(scope, '/', 3) || '/redact/') + 1) || ${MARK} || txn_id
    WHERE scope LIKE '/rooms/%/redact/%'`.execute(db);
  // Ids now reused across rooms or types keep their oldest event.
  await sql`
    DELETE FROM event_txn_ids t USING event_txn_ids o
    WHERE o.user_id = t.user_id AND o.device_id = t.device_id AND o.txn_id = t.txn_id
      AND (o.created_ts, o.scope) < (t.created_ts, t.scope)`.execute(db);
  await sql`ALTER TABLE event_txn_ids DROP COLUMN scope`.execute(db);
  await sql`ALTER TABLE event_txn_ids ADD CONSTRAINT event_txn_ids_pk PRIMARY KEY (user_id, device_id, txn_id)`.execute(db);
}
