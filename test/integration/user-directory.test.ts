/**
 * POST /user_directory/search: who is visible (shared rooms, public rooms,
 * search_all_users), how terms match (case-insensitive word prefixes on
 * user id and display name), ranking and limits, the excluded users, the
 * disabled directory, and the errors. The index behind it is checked too.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryQueries, searchWords } from '../../src/storage/user-directory.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

interface Hit {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}

const search = async (t: TestServer, token: string, body: unknown, prefix = 'v3') => api(t, 'POST', `/_matrix/client/${prefix}/user_directory/search`, { token, body });
const ids = (body: Record<string, unknown>) => (body.results as Hit[]).map((r) => r.user_id);

async function setName(t: TestServer, u: TestUser, name: string): Promise<void> {
  const r = await api(t, 'PUT', `/_matrix/client/v3/profile/${encodeURIComponent(u.userId)}/displayname`, { token: u.accessToken, body: { displayname: name } });
  expect(r.status).toBe(200);
}

async function createRoom(t: TestServer, u: TestUser, body: object): Promise<string> {
  const r = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: u.accessToken, body });
  expect(r.status).toBe(200);
  return r.body.room_id as string;
}

async function join(t: TestServer, u: TestUser, roomId: string): Promise<void> {
  const r = await api(t, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, { token: u.accessToken, body: {} });
  expect(r.status).toBe(200);
}

describe('search term parsing', () => {
  it('splits like Synapse: lower-cased, NFKC, @ and : split, - . _ kept inside words', () => {
    expect(searchWords('@Alice.Smith:Example.com')).toEqual(['alice.smith', 'example.com']);
    expect(searchWords('user-71')).toEqual(['user-71']);
    expect(searchWords('  Bob   the_builder! ')).toEqual(['bob', 'the_builder']);
    expect(searchWords('ÄRGER ①')).toEqual(['ärger', '1']);
    expect(searchWords('trailing- ...')).toEqual(['trailing']);
    expect(searchWords('!!! ???')).toEqual([]);
  });

  it('quotes words for tsquery and caps them at ten', () => {
    expect(directoryQueries("o'neil")).toEqual({ prefixQuery: "'o''neil':*", exactQuery: "'o''neil'" });
    expect(directoryQueries('a b')).toEqual({ prefixQuery: "'a':* & 'b':*", exactQuery: "'a' & 'b'" });
    expect(directoryQueries('w '.repeat(20))?.exactQuery.split(' & ')).toHaveLength(10);
    expect(directoryQueries('   ')).toBeUndefined();
  });
});

describe('user directory (visibility by rooms)', () => {
  let t: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let dave: TestUser;
  let erin: TestUser;
  let frank: TestUser;
  beforeAll(async () => {
    t = await startTestServer({ yaml: { rc_user_directory: { per_second: 1000, burst_count: 1000 } } });
    alice = await createUser(t, 'alice');
    bob = await createUser(t, 'bob');
    carol = await createUser(t, 'carol');
    dave = await createUser(t, 'dave');
    erin = await createUser(t, 'erin');
    frank = await createUser(t, 'frank');
    await setName(t, bob, 'Bob Builder');
    await setName(t, carol, 'Carol Ärger');
    await setName(t, dave, 'Dave Public');
    await setName(t, erin, 'Erin Hidden');
    await setName(t, frank, 'Frank Builder');
    // alice and bob share a private room; carol is invited there only.
    const priv = await createRoom(t, alice, { preset: 'private_chat', invite: [bob.userId, carol.userId] });
    await join(t, bob, priv);
    // dave is in a public room that alice is not in.
    await createRoom(t, dave, { preset: 'public_chat' });
    // erin is alone in a private room; frank in a world-readable one.
    await createRoom(t, erin, { preset: 'private_chat' });
    await createRoom(t, frank, {
      preset: 'private_chat',
      initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'world_readable' } }],
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('finds users sharing a joined room, in public or world-readable rooms; not invitees or strangers', async () => {
    const all = await search(t, alice.accessToken, { search_term: 'test.local' });
    expect(all.status).toBe(200);
    expect(all.body.limited).toBe(false);
    expect(ids(all.body).sort()).toEqual([bob.userId, dave.userId, frank.userId].sort());
    // erin sees the public and world-readable members only, and never herself through a private room.
    const fromErin = await search(t, erin.accessToken, { search_term: 'test.local' });
    expect(ids(fromErin.body).sort()).toEqual([dave.userId, frank.userId].sort());
  });

  it('a user in a public room finds themself, as Synapse does', async () => {
    const r = await search(t, dave.accessToken, { search_term: 'dave' });
    expect(ids(r.body)).toEqual([dave.userId]);
  });

  it('matches case-insensitive word prefixes of display names and user ids, under r0 and v3', async () => {
    for (const term of ['bob', 'BUILD', 'bo bu', '@bob:test.local', 'Bob Builder']) {
      const r = await search(t, alice.accessToken, { search_term: term });
      expect(ids(r.body), term).toContain(bob.userId);
    }
    const r0 = await search(t, alice.accessToken, { search_term: 'bui' }, 'r0');
    expect(r0.status).toBe(200);
    expect(ids(r0.body).sort()).toEqual([bob.userId, frank.userId].sort());
    // Words must each match: "builder bob" matches, "builder dave" does not.
    expect(ids((await search(t, alice.accessToken, { search_term: 'builder bob' })).body)).toEqual([bob.userId]);
    expect(ids((await search(t, alice.accessToken, { search_term: 'builder dave' })).body)).toEqual([]);
    // Middles of words do not match.
    expect(ids((await search(t, alice.accessToken, { search_term: 'uilder' })).body)).toEqual([]);
  });

  it('folds non-ASCII case in names', async () => {
    // carol joins alice's room so alice may see her.
    const roomId = (await api(t, 'GET', '/_matrix/client/v3/joined_rooms', { token: alice.accessToken })).body.joined_rooms as string[];
    await join(t, carol, roomId[0] as string);
    for (const term of ['ärger', 'ÄRGER', 'ärg']) {
      const r = await search(t, alice.accessToken, { search_term: term });
      expect(ids(r.body), term).toEqual([carol.userId]);
    }
  });

  it('returns display names and avatars, omitting what is unset', async () => {
    await api(t, 'PUT', `/_matrix/client/v3/profile/${encodeURIComponent(bob.userId)}/avatar_url`, {
      token: bob.accessToken,
      body: { avatar_url: 'mxc://test.local/bobface' },
    });
    const r = await search(t, alice.accessToken, { search_term: 'bob' });
    expect(r.body.results).toEqual([{ user_id: bob.userId, display_name: 'Bob Builder', avatar_url: 'mxc://test.local/bobface' }]);
    const noName = await createUser(t, 'nameless');
    await createRoom(t, noName, { preset: 'public_chat' });
    await api(t, 'PUT', `/_matrix/client/v3/profile/${encodeURIComponent(noName.userId)}/displayname`, { token: noName.accessToken, body: { displayname: '' } });
    const r2 = await search(t, alice.accessToken, { search_term: 'nameless' });
    expect(r2.body.results).toEqual([{ user_id: noName.userId }]);
  });

  it('ranks exact matches and display-name matches first', async () => {
    // "builder" is a whole word in both names; "bob" exact ranks bob over frank.
    const r = await search(t, alice.accessToken, { search_term: 'builder' });
    expect(ids(r.body).sort()).toEqual([bob.userId, frank.userId].sort());
    const r2 = await search(t, alice.accessToken, { search_term: 'b' });
    // bob: localpart and display name start with b; frank only his surname.
    expect(ids(r2.body)[0]).toBe(bob.userId);
  });

  it('honours limit (default 10, at most 50) and reports limited', async () => {
    const one = await search(t, alice.accessToken, { search_term: 'test', limit: 1 });
    expect((one.body.results as Hit[]).length).toBe(1);
    expect(one.body.limited).toBe(true);
    const zero = await search(t, alice.accessToken, { search_term: 'test', limit: 0 });
    expect(zero.body).toEqual({ limited: true, results: [] });
    const negative = await search(t, alice.accessToken, { search_term: 'test', limit: -5 });
    expect(negative.body.results).toEqual([]);
    const big = await search(t, alice.accessToken, { search_term: 'test', limit: 1000 });
    expect(big.body.limited).toBe(false);
  });

  it('leaves out deactivated, locked and support users', async () => {
    const db = t.server.ctx.database.db;
    const r0 = await search(t, alice.accessToken, { search_term: 'dave' });
    expect(ids(r0.body)).toEqual([dave.userId]);
    await db.updateTable('users').set({ locked: true }).where('user_id', '=', dave.userId).execute();
    expect(ids((await search(t, alice.accessToken, { search_term: 'dave' })).body)).toEqual([]);
    await db.updateTable('users').set({ locked: false, user_type: 'support' }).where('user_id', '=', dave.userId).execute();
    expect(ids((await search(t, alice.accessToken, { search_term: 'dave' })).body)).toEqual([]);
    await db.updateTable('users').set({ user_type: null, deactivated: true }).where('user_id', '=', dave.userId).execute();
    expect(ids((await search(t, alice.accessToken, { search_term: 'dave' })).body)).toEqual([]);
    await db.updateTable('users').set({ deactivated: false }).where('user_id', '=', dave.userId).execute();
    expect(ids((await search(t, alice.accessToken, { search_term: 'dave' })).body)).toEqual([dave.userId]);
  });

  it('sees a user leave: after leaving the shared room they are no longer found', async () => {
    const pub = await createRoom(t, alice, { preset: 'private_chat' });
    const g = await createUser(t, 'gina');
    await setName(t, g, 'Gina');
    expect(ids((await search(t, alice.accessToken, { search_term: 'gina' })).body)).toEqual([]);
    await api(t, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(pub)}/invite`, { token: alice.accessToken, body: { user_id: g.userId } });
    await join(t, g, pub);
    expect(ids((await search(t, alice.accessToken, { search_term: 'gina' })).body)).toEqual([g.userId]);
    await api(t, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(pub)}/leave`, { token: g.accessToken, body: {} });
    expect(ids((await search(t, alice.accessToken, { search_term: 'gina' })).body)).toEqual([]);
  });

  it('a term without words finds nobody; special characters are safe', async () => {
    for (const term of ['', '   ', '!!!', "'", '\\', ':*', '& | !', "o'neil"]) {
      const r = await search(t, alice.accessToken, { search_term: term });
      expect(r.status, term).toBe(200);
      expect(r.body.results, term).toEqual([]);
    }
  });

  it('refuses bad requests with the spec errors', async () => {
    const missing = await search(t, alice.accessToken, {});
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
    const notString = await search(t, alice.accessToken, { search_term: 5 });
    expect(notString.status).toBe(400);
    expect(notString.body.errcode).toBe('M_INVALID_PARAM');
    const badLimit = await search(t, alice.accessToken, { search_term: 'a', limit: 'ten' });
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.errcode).toBe('M_INVALID_PARAM');
    const floatLimit = await search(t, alice.accessToken, { search_term: 'a', limit: 1.5 });
    expect(floatLimit.body.errcode).toBe('M_INVALID_PARAM');
    const nul = await search(t, alice.accessToken, { search_term: 'a\u0000b' });
    expect(nul.body.errcode).toBe('M_INVALID_PARAM');
    const notObject = await search(t, alice.accessToken, [1, 2]);
    expect(notObject.status).toBe(400);
    expect(notObject.body.errcode).toBe('M_BAD_JSON');
    const notJson = await api(t, 'POST', '/_matrix/client/v3/user_directory/search', { token: alice.accessToken, headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    expect(notJson.body.errcode).toBe('M_NOT_JSON');
    const noToken = await search(t, '', { search_term: 'a' });
    expect(noToken.status).toBe(401);
    expect(noToken.body.errcode).toBe('M_MISSING_TOKEN');
    const badToken = await search(t, 'nope', { search_term: 'a' });
    expect(badToken.status).toBe(401);
    expect(badToken.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const get = await api(t, 'GET', '/_matrix/client/v3/user_directory/search', { token: alice.accessToken });
    expect(get.status).toBe(405);
    expect(get.body.errcode).toBe('M_UNRECOGNIZED');
  });

  it('refuses guests', async () => {
    const db = t.server.ctx.database.db;
    const guest = await createUser(t, 'guesty');
    await db.updateTable('users').set({ is_guest: true }).where('user_id', '=', guest.userId).execute();
    t.server.ctx.services.auth.forgetUser(guest.userId);
    const r = await search(t, guest.accessToken, { search_term: 'bob' });
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });

  it('the search uses the text-search index', async () => {
    const db = t.server.ctx.database.db;
    await sql`SET enable_seqscan = off`.execute(db);
    try {
      const plan = await sql<{ 'QUERY PLAN': string }>`EXPLAIN SELECT user_id FROM profiles WHERE search_vector @@ to_tsquery('simple', 'bob:*')`.execute(db);
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('profiles_user_search');
    } finally {
      await sql`RESET enable_seqscan`.execute(db);
    }
  });
});

describe('user directory configuration', () => {
  it('search_all_users finds every local user but the searcher', async () => {
    const t = await startTestServer({ yaml: { user_directory: { search_all_users: true } } });
    try {
      const a = await createUser(t, 'alice');
      const b = await createUser(t, 'bob');
      const r = await search(t, a.accessToken, { search_term: 'test.local' });
      expect(r.status).toBe(200);
      expect(ids(r.body)).toEqual([b.userId]);
    } finally {
      await t.close();
    }
  });

  it('enabled: false answers every search with no results (after auth)', async () => {
    const t = await startTestServer({ yaml: { user_directory: { enabled: false, search_all_users: true } } });
    try {
      const a = await createUser(t, 'alice');
      await createUser(t, 'bob');
      const r = await search(t, a.accessToken, { search_term: 'bob' });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ limited: false, results: [] });
      // Even one that is malformed: the directory reads nothing.
      const malformed = await search(t, a.accessToken, { limit: 'many' });
      expect(malformed.status).toBe(200);
      expect(malformed.body).toEqual({ limited: false, results: [] });
      const noToken = await search(t, '', { search_term: 'bob' });
      expect(noToken.status).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('rc_user_directory limits searches per user with 429', async () => {
    const t = await startTestServer({ yaml: { rc_user_directory: { per_second: 0.001, burst_count: 2 } } });
    try {
      const a = await createUser(t, 'alice');
      expect((await search(t, a.accessToken, { search_term: 'x' })).status).toBe(200);
      expect((await search(t, a.accessToken, { search_term: 'x' })).status).toBe(200);
      const third = await search(t, a.accessToken, { search_term: 'x' });
      expect(third.status).toBe(429);
      expect(third.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect(typeof third.body.retry_after_ms).toBe('number');
    } finally {
      await t.close();
    }
  });
});
