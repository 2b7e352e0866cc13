/**
 * The route schemas of the room routes (directory, createRoom, membership,
 * /messages, /context, /relations, redaction, upgrade, receipts, user
 * directory, profile, presence, notifications): for each, a valid request
 * that succeeds, then a missing required field, a wrong type and a bad enum
 * or limit, each with the status and errcode Synapse gives.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { roomHelpers, useServerWith } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';

const V1 = '/_matrix/client/v1';
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;
const LOOSE = { per_second: 1000, burst_count: 1000 };

const { t, alice, bob, carol } = useServerWith(
  {
    yaml: {
      rc_joins: { local: LOOSE, remote: LOOSE },
      rc_invites: { per_room: LOOSE, per_user: LOOSE, per_issuer: LOOSE },
      rc_presence: { per_user: LOOSE },
      room_list_publication_rules: [{ action: 'allow' }],
    },
  },
  'alice',
  'bob',
  'carol',
);
const rooms = roomHelpers(() => t);

type Answer = { status: number; body: Record<string, unknown> };

/** A 400 (or the status given) with this errcode. */
function refused(res: Answer, errcode: string, status = 400): void {
  expect({ status: res.status, errcode: res.body.errcode }, JSON.stringify(res.body)).toEqual({ status, errcode });
}

function ok(res: Answer): void {
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

const call = (method: string, path: string, body?: unknown, token: string | undefined = alice.accessToken) => api(t, method, path, { token, body });

let roomId: string;
let eventId: string;
const room = () => `${V3}/rooms/${enc(roomId)}`;

beforeAll(async () => {
  roomId = await rooms.createRoom(alice, { preset: 'public_chat' });
  eventId = await rooms.send(alice, roomId, { msgtype: 'm.text', body: 'hello' });
});

describe('directory', () => {
  it('PUT /directory/room/{roomAlias}: room_id required, a string; servers a list of strings', async () => {
    const path = `${V3}/directory/room/${enc('#schemas:test.local')}`;
    ok(await call('PUT', path, { room_id: roomId, servers: ['test.local'] }));
    const other = `${V3}/directory/room/${enc('#schemas2:test.local')}`;
    refused(await call('PUT', other, {}), 'M_MISSING_PARAM');
    refused(await call('PUT', other, { room_id: 5 }), 'M_BAD_JSON');
    refused(await call('PUT', other, { room_id: roomId, servers: 'test.local' }), 'M_BAD_JSON');
    refused(await call('PUT', other, { room_id: roomId, servers: [1] }), 'M_BAD_JSON');
  });

  it('PUT /directory/list/room/{roomId}: visibility public or private (absent: public)', async () => {
    const path = `${V3}/directory/list/room/${enc(roomId)}`;
    ok(await call('PUT', path, { visibility: 'private' }));
    ok(await call('PUT', path, {}));
    expect((await call('GET', path)).body).toEqual({ visibility: 'public' });
    refused(await call('PUT', path, { visibility: 'hidden' }), 'M_INVALID_PARAM');
    refused(await call('PUT', path, { visibility: 1 }), 'M_INVALID_PARAM');
  });

  it('GET /publicRooms: limit a non-negative integer, each parameter once; the token first', async () => {
    ok(await call('GET', `${V3}/publicRooms?limit=5&since=`));
    for (const q of ['limit=many', 'limit=-1', 'limit=1.5', 'limit=1&limit=2']) refused(await call('GET', `${V3}/publicRooms?${q}`), 'M_INVALID_PARAM');
    refused(await call('GET', `${V3}/publicRooms?limit=many`, undefined, ''), 'M_MISSING_TOKEN', 401);
  });

  it('POST /publicRooms: limit, since, filter, include_all_networks and third_party_instance_id by type', async () => {
    const path = `${V3}/publicRooms`;
    ok(await call('POST', path, { limit: 5, since: null, filter: { generic_search_term: 'x', room_types: [null, 'm.space'] }, include_all_networks: false }));
    // Synapse reads `limit` with int(): a string of digits will do.
    ok(await call('POST', path, { limit: '5' }));
    for (const body of [
      { limit: 'many' },
      { limit: -1 },
      { limit: 1.5 },
      { since: 3 },
      { filter: [] },
      { filter: { generic_search_term: 1 } },
      { filter: { room_types: 'm.space' } },
      { include_all_networks: 'yes' },
      { third_party_instance_id: 2 },
    ]) {
      refused(await call('POST', path, body), 'M_BAD_JSON');
    }
    refused(await call('POST', path, { include_all_networks: true, third_party_instance_id: 'irc' }), 'M_INVALID_PARAM');
  });
});

describe('POST /createRoom', () => {
  it('takes the spec fields and refuses each wrong one with Synapse code', async () => {
    ok(
      await call('POST', `${V3}/createRoom`, {
        name: 'Room',
        topic: 'About',
        preset: 'private_chat',
        visibility: 'private',
        invite: [bob.userId],
        is_direct: true,
        room_version: '10',
        initial_state: [{ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'can_join' } }],
        creation_content: { 'm.federate': true },
        power_level_content_override: { users_default: 0 },
      }),
    );
    const bad: [Record<string, unknown>, string][] = [
      [{ name: 5 }, 'M_BAD_JSON'],
      [{ topic: null }, 'M_BAD_JSON'],
      [{ room_version: 10 }, 'M_BAD_JSON'],
      [{ visibility: 'hidden' }, 'M_BAD_JSON'],
      [{ preset: 'open_chat' }, 'M_INVALID_PARAM'],
      [{ preset: 1 }, 'M_INVALID_PARAM'],
      [{ invite: bob.userId }, 'M_INVALID_PARAM'],
      [{ invite: [1] }, 'M_INVALID_PARAM'],
      [{ invite: ['bob'] }, 'M_INVALID_PARAM'],
      [{ is_direct: 'yes' }, 'M_BAD_JSON'],
      [{ initial_state: {} }, 'M_BAD_JSON'],
      [{ initial_state: ['m.room.topic'] }, 'M_BAD_JSON'],
      [{ initial_state: [{ type: 'm.room.topic' }] }, 'M_BAD_JSON'],
      [{ creation_content: [] }, 'M_BAD_JSON'],
      [{ power_level_content_override: 'all' }, 'M_BAD_JSON'],
    ];
    for (const [body, errcode] of bad) refused(await call('POST', `${V3}/createRoom`, body), errcode);
  });
});

describe('membership', () => {
  it('invite, kick, ban and unban: user_id required (an empty body too), a user id; reason a string or null', async () => {
    const r = await rooms.createRoom(alice);
    const path = (action: string) => `${V3}/rooms/${enc(r)}/${action}`;
    for (const action of ['invite', 'kick', 'ban', 'unban']) {
      refused(await call('POST', path(action), {}), 'M_MISSING_PARAM');
      refused(await call('POST', path(action)), 'M_MISSING_PARAM');
      refused(await call('POST', path(action), { user_id: 5 }), 'M_INVALID_PARAM');
      refused(await call('POST', path(action), { user_id: null }), 'M_INVALID_PARAM');
      refused(await call('POST', path(action), { user_id: 'bob' }), 'M_INVALID_PARAM');
      refused(await call('POST', path(action), { user_id: bob.userId, reason: 5 }), 'M_BAD_JSON');
    }
    ok(await call('POST', path('invite'), { user_id: bob.userId, reason: null }));
    await rooms.join(bob, r);
    ok(await call('POST', path('kick'), { user_id: bob.userId, reason: 'out' }));
    ok(await call('POST', path('ban'), { user_id: bob.userId }));
    ok(await call('POST', path('unban'), { user_id: bob.userId, reason: 'forgiven' }));
  });

  it('join, leave and knock: reason a string or null', async () => {
    const r = await rooms.createRoom(alice, { preset: 'public_chat' });
    for (const path of [`${V3}/rooms/${enc(r)}/join`, `${V3}/join/${enc(r)}`, `${V3}/rooms/${enc(r)}/leave`, `${V3}/knock/${enc(r)}`]) {
      refused(await call('POST', path, { reason: 5 }, carol.accessToken), 'M_BAD_JSON');
      refused(await call('POST', path, { reason: ['x'] }, carol.accessToken), 'M_BAD_JSON');
    }
    ok(await call('POST', `${V3}/rooms/${enc(r)}/join`, undefined, carol.accessToken));
    ok(await call('POST', `${V3}/rooms/${enc(r)}/leave`, { reason: null }, carol.accessToken));
    ok(await call('POST', `${V3}/join/${enc(r)}`, { reason: 'back' }, carol.accessToken));
    const knockable = await rooms.createRoom(alice, { initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] });
    ok(await call('POST', `${V3}/knock/${enc(knockable)}`, { reason: 'let me in' }, carol.accessToken));
  });
});

describe('reading rooms', () => {
  it('GET /messages: dir b or f, limit a non-negative integer, each parameter once', async () => {
    const page = await call('GET', `${room()}/messages?dir=b&limit=5&filter=${enc('{"types":["m.room.message"]}')}`);
    ok(page);
    expect((page.body.chunk as unknown[]).length).toBe(1);
    ok(await call('GET', `${room()}/messages?limit=2`));
    for (const q of ['dir=up', 'dir=', 'limit=ten', 'limit=-1', 'dir=b&dir=f', 'limit=1&limit=2', 'from=a&from=b']) {
      refused(await call('GET', `${room()}/messages?${q}`), 'M_INVALID_PARAM');
    }
    refused(await call('GET', `${room()}/messages?dir=up`, undefined, ''), 'M_MISSING_TOKEN', 401);
  });

  it('GET /context: limit a non-negative integer', async () => {
    const path = `${room()}/context/${enc(eventId)}`;
    ok(await call('GET', `${path}?limit=3`));
    for (const q of ['limit=three', 'limit=-3', 'limit=1&limit=2']) refused(await call('GET', `${path}?${q}`), 'M_INVALID_PARAM');
  });

  it('GET /relations: dir, limit and recurse', async () => {
    const path = `${V1}/rooms/${enc(roomId)}/relations/${enc(eventId)}`;
    ok(await call('GET', `${path}?dir=f&limit=2&recurse=true`));
    ok(await call('GET', `${path}/m.reference?org.matrix.msc3981.recurse=false`));
    for (const q of ['dir=up', 'limit=two', 'limit=-2', 'recurse=yes', 'org.matrix.msc3981.recurse=1', 'dir=b&dir=f']) {
      refused(await call('GET', `${path}?${q}`), 'M_INVALID_PARAM');
    }
  });
});

describe('writing to rooms', () => {
  it('PUT /redact: reason a string or null', async () => {
    const target = await rooms.send(alice, roomId, { msgtype: 'm.text', body: 'oops' });
    refused(await rooms.redact(alice, roomId, target, undefined, { reason: 5 }), 'M_BAD_JSON');
    refused(await call('POST', `${room()}/redact/${enc(target)}`, { reason: {} }), 'M_BAD_JSON');
    ok(await rooms.redact(alice, roomId, target, undefined, { reason: 'typo' }));
    ok(await rooms.redact(alice, roomId, await rooms.send(alice, roomId, { msgtype: 'm.text', body: 'again' }), undefined, { reason: null }));
  });

  it('POST /upgrade: new_version required, a string; additional_creators user ids', async () => {
    const old = await rooms.createRoom(alice, { room_version: '10' });
    const path = `${V3}/rooms/${enc(old)}/upgrade`;
    refused(await call('POST', path, {}), 'M_MISSING_PARAM');
    refused(await call('POST', path, { new_version: 11 }), 'M_UNSUPPORTED_ROOM_VERSION');
    refused(await call('POST', path, { new_version: '12', additional_creators: bob.userId }), 'M_INVALID_PARAM');
    refused(await call('POST', path, { new_version: '12', additional_creators: [7] }), 'M_INVALID_PARAM');
    refused(await call('POST', path, { new_version: '12', additional_creators: ['bob'] }), 'M_INVALID_PARAM');
    const res = await call('POST', path, { new_version: '11' });
    ok(res);
    expect(res.body.replacement_room).toMatch(/^!/);
  });

  it('POST /receipt: thread_id a non-empty string', async () => {
    const path = `${room()}/receipt/m.read/${enc(eventId)}`;
    ok(await call('POST', path, { thread_id: 'main' }));
    ok(await call('POST', path, {}));
    refused(await call('POST', path, { thread_id: '' }), 'M_INVALID_PARAM');
    refused(await call('POST', path, { thread_id: 5 }), 'M_INVALID_PARAM');
    refused(await call('POST', path, { thread_id: null }), 'M_INVALID_PARAM');
  });

  it('POST /read_markers: each marker an event id or null', async () => {
    const path = `${room()}/read_markers`;
    ok(await call('POST', path, { 'm.fully_read': eventId, 'm.read': null }));
    refused(await call('POST', path, { 'm.read': 5 }), 'M_INVALID_PARAM');
    refused(await call('POST', path, { 'm.fully_read': [eventId] }), 'M_INVALID_PARAM');
    refused(await call('POST', path, { 'm.read.private': 'not-an-event' }), 'M_INVALID_PARAM');
  });
});

describe('users', () => {
  it('POST /user_directory/search: search_term required, a string; limit an integer', async () => {
    const path = `${V3}/user_directory/search`;
    const res = await call('POST', path, { search_term: 'bob', limit: 5 });
    ok(res);
    ok(await call('POST', path, { search_term: 'bob', limit: null }));
    refused(await call('POST', path, {}), 'M_MISSING_PARAM');
    refused(await call('POST', path, { search_term: 5 }), 'M_INVALID_PARAM');
    refused(await call('POST', path, { search_term: 'bob', limit: '5' }), 'M_INVALID_PARAM');
    refused(await call('POST', path, { search_term: 'bob', limit: 1.5 }), 'M_INVALID_PARAM');
  });

  it('PUT /profile/{userId}/displayname and /avatar_url: the field required, a string within its length', async () => {
    for (const [field, max, value] of [
      ['displayname', 256, 'Alice'],
      ['avatar_url', 1000, 'mxc://test.local/abc'],
    ] as const) {
      const path = `${V3}/profile/${enc(alice.userId)}/${field}`;
      ok(await call('PUT', path, { [field]: value }));
      expect((await call('GET', path)).body).toEqual({ [field]: value });
      refused(await call('PUT', path, {}), 'M_MISSING_PARAM');
      refused(await call('PUT', path, { [field]: 5 }), 'M_INVALID_PARAM');
      refused(await call('PUT', path, { [field]: null }), 'M_INVALID_PARAM');
      refused(await call('PUT', path, { [field]: 'x'.repeat(max + 1) }), 'M_INVALID_PARAM');
    }
    // Counted in code points: 256 emoji (512 UTF-16 units) are within the limit.
    ok(await call('PUT', `${V3}/profile/${enc(alice.userId)}/displayname`, { displayname: '😀'.repeat(256) }));
  });

  it('PUT /presence/{userId}/status: presence required, one of the states; status_msg a string; nothing else', async () => {
    const path = `${V3}/presence/${enc(alice.userId)}/status`;
    ok(await call('PUT', path, { presence: 'unavailable', status_msg: 'lunch' }));
    expect((await call('GET', path)).body).toMatchObject({ presence: 'unavailable', status_msg: 'lunch' });
    ok(await call('PUT', path, { presence: 'online', status_msg: null }));
    refused(await call('PUT', path, {}), 'M_MISSING_PARAM');
    refused(await call('PUT', path, { presence: 'away' }), 'M_INVALID_PARAM');
    refused(await call('PUT', path, { presence: 1 }), 'M_INVALID_PARAM');
    refused(await call('PUT', path, { presence: 'online', status_msg: 5 }), 'M_INVALID_PARAM');
    refused(await call('PUT', path, { presence: 'online', mood: 'fine' }), 'M_BAD_JSON');
  });

  it('GET /notifications: from a stream position, limit a non-negative integer, each parameter once', async () => {
    ok(await call('GET', `${V3}/notifications?from=&limit=5&only=highlight`));
    ok(await call('GET', `${V3}/notifications?from=0`));
    for (const q of ['from=abc', 'limit=many', 'limit=-1', 'limit=1&limit=2', 'only=a&only=b']) {
      refused(await call('GET', `${V3}/notifications?${q}`), 'M_INVALID_PARAM');
    }
  });
});
