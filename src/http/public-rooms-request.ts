/**
 * The POST /publicRooms body, as the client API and the federation API both
 * take it: its schema, and the directory request it makes.
 */
import { MatrixError } from '../matrix-error.js';
import type { PublicRoomsRequest } from '../services/rooms/directory.js';
import { rejectNul } from './request-toolkit.js';

/** POST /publicRooms: as the GET, and the filter; Synapse also takes `limit` as a string of digits. */
export const PUBLIC_ROOMS_BODY = {
  type: 'object',
  properties: {
    limit: { anyOf: [{ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, { type: 'string', pattern: '^[0-9]{1,15}$' }, { type: 'null' }] },
    since: { type: ['string', 'null'] },
    filter: {
      type: ['object', 'null'],
      properties: {
        generic_search_term: { type: ['string', 'null'] },
        room_types: { type: ['array', 'null'], items: { type: ['string', 'null'] } },
      },
    },
    include_all_networks: { type: 'boolean' },
    third_party_instance_id: { type: ['string', 'null'] },
  },
};

export interface PublicRoomsBody {
  limit?: number | string | null;
  since?: string | null;
  filter?: { generic_search_term?: string | null; room_types?: (string | null)[] | null } | null;
  include_all_networks?: boolean;
  third_party_instance_id?: string | null;
}

/** A `limit` the schema let through (an integer or a string of digits) as a number. */
export const limitOf = (v: number | string | null | undefined): number | undefined => (v === undefined || v === null ? undefined : Number(v));

/** The directory request of a POST /publicRooms body the schema let through. */
export function publicRoomsRequest(body: PublicRoomsBody): PublicRoomsRequest {
  const r: PublicRoomsRequest = { limit: limitOf(body.limit) };
  if (typeof body.since === 'string' && body.since !== '') r.since = body.since;
  const term = body.filter?.generic_search_term;
  if (typeof term === 'string') {
    rejectNul(term, 'generic_search_term');
    if (term.trim() !== '') r.search = term;
  }
  const types = body.filter?.room_types;
  if (Array.isArray(types)) {
    rejectNul(types, 'room_types');
    r.roomTypes = types;
  }
  const instance = body.third_party_instance_id;
  if (typeof instance === 'string') {
    if (body.include_all_networks === true) throw new MatrixError(400, 'M_INVALID_PARAM', "Can't use include_all_networks with an explicit network");
    r.thirdPartyInstanceId = instance;
  }
  return r;
}
