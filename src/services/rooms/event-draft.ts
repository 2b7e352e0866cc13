/** What a local client asks to send, before the server builds it into a PDU. */
import type { JsonObject } from '../../core/pdu.js';

export interface EventDraft {
  type: string;
  state_key?: string;
  content: JsonObject;
  /** For m.room.redaction: the redacted event (top-level before v11, in content from v11). */
  redacts?: string;
}
