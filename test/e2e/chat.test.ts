/**
 * End to end with a real client library: two matrix-js-sdk clients talk to
 * the running server over HTTP. They register (with a registration token,
 * through the SDK's user-interactive auth), log in, sync, create a room,
 * invite and join, exchange messages, scroll back, and see each other's
 * typing, read receipts, presence and directory entries, exactly as a
 * client app would.
 *
 * The SDK's own logging is silenced; set AXON_E2E_LOG=1 to see it.
 */
import {
  ClientEvent,
  createClient,
  Direction,
  EventType,
  type MatrixClient,
  type MatrixEvent,
  MatrixError,
  MsgType,
  Preset,
  type Room,
  RoomEvent,
  RoomMemberEvent,
  SyncState,
  type RoomMember,
} from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser } from '../helpers/users.js';

const WAIT_MS = 15_000;

function quietSdk(): void {
  if (process.env.AXON_E2E_LOG) return;
  // The SDK logs through loglevel; its children copy the root's factory when made.
  const root = sdkLogger as unknown as { methodFactory: unknown; rebuild?: () => void };
  root.methodFactory = () => () => undefined;
  root.rebuild?.();
  // Loggers made before this point still print through console: mute it for this file.
  for (const m of ['log', 'debug', 'info', 'warn', 'error', 'trace'] as const) vi.spyOn(console, m).mockImplementation(() => undefined);
}

/**
 * Requests the SDK made that the server refused or failed, newest last: a
 * timed-out wait names them, so a missing endpoint is plain to see.
 */
const failures: string[] = [];
const recordingFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  // UIA's 401s on /register are steps of the flow, not failures.
  if (!res.ok && !(res.status === 401 && url.pathname.endsWith('/register'))) {
    const body = await res
      .clone()
      .text()
      .catch(() => '');
    failures.push(`${init?.method ?? 'GET'} ${url.pathname} -> ${res.status} ${body.slice(0, 200)}`);
    if (failures.length > 50) failures.shift();
  }
  return res;
};
const recentFailures = () => (failures.length > 0 ? `; recent failed requests:\n  ${[...new Set(failures.slice(-10))].join('\n  ')}` : '');

/** Resolves with the first emission of `event` whose arguments satisfy `pred`. */
function waitFor<A extends unknown[]>(
  emitter: { on(e: string, l: (...a: A) => void): unknown; off(e: string, l: (...a: A) => void): unknown },
  event: string,
  pred: (...args: A) => boolean,
  what: string,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out waiting for ${what}${recentFailures()}`));
    }, WAIT_MS);
    const listener = (...args: A) => {
      let ok = false;
      try {
        ok = pred(...args);
      } catch {
        ok = false;
      }
      if (!ok) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args);
    };
    emitter.on(event, listener);
  });
}

/** Polls `check` until it returns a value (not undefined) or the wait runs out. */
async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const until = Date.now() + WAIT_MS;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${recentFailures()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Account {
  userId: string;
  password: string;
  client: MatrixClient;
}

/** Registers through the SDK (registration token, then dummy, as the server's flow asks), then logs in with the SDK. */
async function registerAndLogIn(baseUrl: string, username: string, token: string): Promise<Account> {
  const password = `pw-${username}-e2e`;
  const anon = createClient({ baseUrl, fetchFn: recordingFetch });
  let session: string | undefined;
  try {
    await anon.registerRequest({ username, password, inhibit_login: true });
    throw new Error('registration did not ask for authentication');
  } catch (err) {
    if (!(err instanceof MatrixError) || err.httpStatus !== 401) throw err;
    session = (err.data as { session?: string }).session;
    const flows = (err.data as { flows?: { stages: string[] }[] }).flows ?? [];
    expect(flows.map((f) => f.stages)).toContainEqual(expect.arrayContaining(['m.login.registration_token']));
  }
  expect(session).toBeTruthy();
  const stage = async (auth: Record<string, unknown>) => {
    try {
      return await anon.registerRequest({ username, password, inhibit_login: true, auth: { ...auth, session } as never });
    } catch (err) {
      if (err instanceof MatrixError && err.httpStatus === 401) return undefined; // more stages to go
      throw err;
    }
  };
  let reg = await stage({ type: 'm.login.registration_token', token });
  reg ??= await stage({ type: 'm.login.dummy' });
  expect(reg?.user_id).toMatch(new RegExp(`^@${username}:`));
  const login = await anon.loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: username }, password });
  const client = createClient({ baseUrl, fetchFn: recordingFetch, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id });
  return { userId: login.user_id, password, client };
}

async function startSyncing(client: MatrixClient, initialSyncLimit = 20): Promise<void> {
  const prepared = waitFor<[SyncState, SyncState | null]>(client, ClientEvent.Sync, (s) => s === SyncState.Prepared || s === SyncState.Syncing, 'the first sync');
  await client.startClient({ initialSyncLimit, lazyLoadMembers: false });
  await prepared;
}

function roomOf(client: MatrixClient, roomId: string): Room {
  const room = client.getRoom(roomId);
  if (!room) throw new Error(`${client.getUserId()} has no room ${roomId}`);
  return room;
}

const bodies = (events: MatrixEvent[]) => events.filter((e) => e.getType() === EventType.RoomMessage).map((e) => e.getContent().body as string);

describe('two matrix-js-sdk clients chatting', () => {
  let t: TestServer;
  let alice: Account;
  let bob: Account;
  let roomId: string;
  const clients: MatrixClient[] = [];
  const MESSAGES = 30;

  beforeAll(async () => {
    quietSdk();
    const loose = { per_second: 1000, burst_count: 1000 };
    t = await startTestServer({
      yaml: {
        enable_registration: true,
        registration_requires_token: true,
        rc_presence: { per_user: loose },
        rc_user_directory: loose,
        rc_joins: { local: loose, remote: loose },
      },
    });
    const admin = await createUser(t, 'admin', { admin: true });
    const tok = await api(t, 'POST', '/_synapse/admin/v1/registration_tokens/new', { token: admin.accessToken, body: { uses_allowed: 2 } });
    expect(tok.status).toBe(200);
    alice = await registerAndLogIn(t.url, 'alice', tok.body.token as string);
    bob = await registerAndLogIn(t.url, 'bob', tok.body.token as string);
    clients.push(alice.client, bob.client);
    await alice.client.setDisplayName('Alice Liddell');
    await startSyncing(alice.client);
    await startSyncing(bob.client);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.stopClient();
    await t?.close();
    vi.restoreAllMocks();
  });

  it('alice creates a room and invites bob; bob sees the invite and joins', async () => {
    const invited = waitFor<[Room, string]>(bob.client, RoomEvent.MyMembership, (_room, membership) => membership === 'invite', 'bob to see the invite');
    const created = await alice.client.createRoom({ name: 'E2E chat', preset: Preset.PrivateChat });
    roomId = created.room_id;
    await alice.client.invite(roomId, bob.userId);
    const [room] = await invited;
    expect(room.roomId).toBe(roomId);
    expect(room.getMember(bob.userId)?.membership).toBe('invite');

    const aliceSeesJoin = waitFor<[MatrixEvent, RoomMember, string | undefined]>(
      alice.client,
      RoomMemberEvent.Membership,
      (_e, member) => member.userId === bob.userId && member.membership === 'join',
      'alice to see bob join',
    );
    await bob.client.joinRoom(roomId);
    await aliceSeesJoin;
    await eventually(() => (bob.client.getRoom(roomId)?.getMyMembership() === 'join' ? true : undefined), 'bob to hold the joined room');
    expect(roomOf(bob.client, roomId).name).toBe('E2E chat');
    expect(roomOf(alice.client, roomId).getJoinedMemberCount()).toBe(2);
  });

  it('they exchange messages and each sees the other’s, in order', async () => {
    const lastFromAlice = `message ${MESSAGES - 1}`;
    const bobGetsAll = waitFor<[MatrixEvent]>(bob.client, RoomEvent.Timeline, (e) => e.getContent().body === lastFromAlice, 'bob to receive alice’s messages');
    for (let i = 0; i < MESSAGES; i++) await alice.client.sendTextMessage(roomId, `message ${i}`);
    await bobGetsAll;
    const bobTimeline = bodies(roomOf(bob.client, roomId).getLiveTimeline().getEvents());
    const sent = Array.from({ length: MESSAGES }, (_, i) => `message ${i}`);
    expect(bobTimeline.slice(-MESSAGES)).toEqual(sent);

    const aliceGetsReply = waitFor<[MatrixEvent]>(
      alice.client,
      RoomEvent.Timeline,
      (e) => e.getContent().body === 'hello alice' && e.getSender() === bob.userId,
      'alice to receive bob’s reply',
    );
    await bob.client.sendMessage(roomId, { msgtype: MsgType.Text, body: 'hello alice' });
    const [reply] = await aliceGetsReply;
    expect(reply.getRoomId()).toBe(roomId);
    expect(reply.getId()).toMatch(/^\$/);
  });

  it('a client that syncs with a short timeline scrolls back through the history', async () => {
    // A second login for bob, whose first sync holds only the last few events.
    const login = await bob.client.loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: bob.password });
    const late = createClient({ baseUrl: t.url, fetchFn: recordingFetch, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id });
    clients.push(late);
    await startSyncing(late, 5);
    const room = await eventually(() => late.getRoom(roomId) ?? undefined, 'the late client to know the room');
    const initial = bodies(room.getLiveTimeline().getEvents());
    expect(initial.length).toBeLessThanOrEqual(5);
    expect(initial.at(-1)).toBe('hello alice');
    for (let i = 0; i < 10 && room.getLiveTimeline().getPaginationToken(Direction.Backward) !== null; i++) {
      if (bodies(room.getLiveTimeline().getEvents()).includes('message 0')) break;
      await late.scrollback(room, 20);
    }
    const all = bodies(room.getLiveTimeline().getEvents());
    expect(all).toEqual([...Array.from({ length: MESSAGES }, (_, i) => `message ${i}`), 'hello alice']);
    // The room's creation is reached too.
    expect(
      room
        .getLiveTimeline()
        .getEvents()
        .some((e) => e.getType() === EventType.RoomCreate),
    ).toBe(true);
  });

  it('/messages through the SDK pages backwards and forwards', async () => {
    const back = await bob.client.createMessagesRequest(roomId, null, 10, Direction.Backward);
    const backBodies = back.chunk.filter((e) => e.type === EventType.RoomMessage).map((e) => e.content.body as string);
    expect(backBodies[0]).toBe('hello alice');
    expect(backBodies.slice(1)).toEqual(Array.from({ length: 9 }, (_, i) => `message ${MESSAGES - 1 - i}`));
    expect(back.end).toBeTruthy();
    const older = await bob.client.createMessagesRequest(roomId, back.end ?? null, 5, Direction.Backward);
    expect(older.chunk.filter((e) => e.type === EventType.RoomMessage).map((e) => e.content.body)).toEqual(Array.from({ length: 5 }, (_, i) => `message ${MESSAGES - 10 - i}`));
    const forward = await bob.client.createMessagesRequest(roomId, older.end ?? null, 3, Direction.Forward);
    expect(forward.chunk.filter((e) => e.type === EventType.RoomMessage).map((e) => e.content.body)).toEqual(
      Array.from({ length: 3 }, (_, i) => `message ${MESSAGES - 15 + 1 + i}`),
    );
  });

  it('each sees the other typing, and stopping', async () => {
    const aliceSeesTyping = waitFor<[MatrixEvent, RoomMember]>(alice.client, RoomMemberEvent.Typing, (_e, m) => m.userId === bob.userId && m.typing, 'alice to see bob typing');
    await bob.client.sendTyping(roomId, true, 30_000);
    await aliceSeesTyping;
    expect(roomOf(alice.client, roomId).getMember(bob.userId)?.typing).toBe(true);

    const aliceSeesStop = waitFor<[MatrixEvent, RoomMember]>(alice.client, RoomMemberEvent.Typing, (_e, m) => m.userId === bob.userId && !m.typing, 'alice to see bob stop typing');
    await bob.client.sendTyping(roomId, false, 0);
    await aliceSeesStop;

    const bobSeesTyping = waitFor<[MatrixEvent, RoomMember]>(bob.client, RoomMemberEvent.Typing, (_e, m) => m.userId === alice.userId && m.typing, 'bob to see alice typing');
    await alice.client.sendTyping(roomId, true, 30_000);
    await bobSeesTyping;
  });

  it('each sees the other’s read receipt', async () => {
    const aliceRoom = roomOf(alice.client, roomId);
    const last = aliceRoom
      .getLiveTimeline()
      .getEvents()
      .filter((e) => e.getContent().body === 'hello alice')[0];
    expect(last).toBeDefined();
    const bobSeesReceipt = waitFor<[MatrixEvent, Room]>(
      bob.client,
      RoomEvent.Receipt,
      () => roomOf(bob.client, roomId).getEventReadUpTo(alice.userId) === last!.getId(),
      'bob to see alice’s read receipt',
    );
    await alice.client.sendReadReceipt(last!);
    await bobSeesReceipt;
    expect(roomOf(bob.client, roomId).getEventReadUpTo(alice.userId)).toBe(last!.getId());

    // A newer message from alice, which bob then marks read. (The SDK counts a
    // sender's own messages as read by them, so the receipt must be newer than
    // bob's last message to show.)
    const bobGetsIt = waitFor<[MatrixEvent]>(bob.client, RoomEvent.Timeline, (e) => e.getContent().body === 'did you read this?', 'bob to receive the question');
    await alice.client.sendTextMessage(roomId, 'did you read this?');
    const [question] = await bobGetsIt;
    const aliceSeesReceipt = waitFor<[MatrixEvent, Room]>(
      alice.client,
      RoomEvent.Receipt,
      () => roomOf(alice.client, roomId).getEventReadUpTo(bob.userId) === question.getId(),
      'alice to see bob’s read receipt',
    );
    await bob.client.sendReadReceipt(question);
    await aliceSeesReceipt;
    // The receipt is the m.read kind, with a timestamp.
    const receipt = roomOf(alice.client, roomId).getReadReceiptForUserId(bob.userId);
    expect(receipt?.eventId).toBe(question.getId());
    expect(receipt?.data.ts).toBeGreaterThan(0);
  });

  it('bob sees alice’s presence change through sync', async () => {
    // The SDK fires UserEvent.Presence only when the state itself changes; a
    // new status message arrives as an m.presence event on the client.
    const bobSeesPresence = waitFor<[MatrixEvent]>(
      bob.client,
      ClientEvent.Event,
      (e) => e.getType() === EventType.Presence && e.getSender() === alice.userId && e.getContent().status_msg === 'writing tests',
      'bob to see alice’s presence',
    );
    await alice.client.setPresence({ presence: 'online', status_msg: 'writing tests' });
    const [event] = await bobSeesPresence;
    expect(event.getContent()).toMatchObject({ presence: 'online', currently_active: true });
    const user = bob.client.getUser(alice.userId);
    expect(user?.presence).toBe('online');
    expect(user?.presenceStatusMsg).toBe('writing tests');
    const direct = await bob.client.getPresence(alice.userId);
    expect(direct).toMatchObject({ presence: 'online', status_msg: 'writing tests' });
  });

  it('bob finds alice in the user directory by display name', async () => {
    const found = await bob.client.searchUserDirectory({ term: 'lidd' });
    expect(found.results).toEqual([{ user_id: alice.userId, display_name: 'Alice Liddell' }]);
    expect(found.limited).toBe(false);
  });
});
