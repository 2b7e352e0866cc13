/**
 * End-to-end encryption between users of two different Axon servers, with
 * matrix-js-sdk clients using the SDK's Rust crypto. Alice (on A) opens an
 * encrypted DM with bob (on B) the way Element does; bob joins over
 * federation; each reads the other's messages. That takes /keys/query and
 * /keys/claim forwarded to the user's server, Olm sessions set up over
 * m.direct_to_device EDUs, and megolm keys shared the same way. A second
 * device of alice logged in later reaches bob's client through the
 * m.device_list_update EDU and B's /sync device_lists, and reads the next
 * message. The servers only ever hold ciphertext.
 */
import { EventType, type MatrixClient, type MatrixEvent, MsgType, Preset } from 'matrix-js-sdk';
import type { CryptoApi } from 'matrix-js-sdk/lib/crypto-api/index.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type CryptoAccount, eventually, HttpTrace, logInWithCrypto, quietSdk } from '../helpers/crypto-client.js';
import { type FederationServer, startFederationServers } from '../helpers/federation.js';
import { api, createUser } from '../helpers/users.js';

const MEGOLM = 'm.megolm.v1.aes-sha2';

function cryptoOf(account: CryptoAccount): CryptoApi {
  const crypto = account.client.getCrypto();
  if (!crypto) throw new Error(`${account.deviceId} has no crypto`);
  return crypto;
}

/** The event once `client` has decrypted it (undefined while it is missing, being decrypted or undecryptable). */
function decrypted(client: MatrixClient, roomId: string, eventId: string): MatrixEvent | undefined {
  const ev = client.getRoom(roomId)?.findEventById(eventId);
  if (!ev || ev.isBeingDecrypted() || ev.isDecryptionFailure()) return undefined;
  return ev.getType() === EventType.RoomMessage ? ev : undefined;
}

describe('encrypted chat between users on two Axon servers (matrix-js-sdk, Rust crypto)', () => {
  const trace = new HttpTrace();
  let a: FederationServer;
  let b: FederationServer;
  let alice: CryptoAccount; // on A, device A1
  let bob: CryptoAccount; // on B
  let alice2: CryptoAccount | undefined; // on A, device A2, logged in later
  let roomId: string;
  const sent = new Map<string, { eventId: string; body: string }>();

  async function send(from: CryptoAccount, label: string): Promise<string> {
    const body = `${label}: ${Math.random().toString(36).slice(2)}`;
    const { event_id } = await from.client.sendMessage(roomId, { msgtype: MsgType.Text, body });
    sent.set(label, { eventId: event_id, body });
    return event_id;
  }

  async function reads(reader: CryptoAccount, label: string, from: CryptoAccount): Promise<void> {
    const msg = sent.get(label);
    if (!msg) throw new Error(`no message ${label}`);
    const ev = await eventually(trace, `${reader.deviceId} (${reader.userId}) to decrypt “${label}”`, () => decrypted(reader.client, roomId, msg.eventId));
    expect(ev.getWireType()).toBe(EventType.RoomMessageEncrypted);
    expect(ev.getWireContent()['algorithm']).toBe(MEGOLM);
    expect(ev.getSender()).toBe(from.userId);
    expect(ev.getClearContent()).toMatchObject({ msgtype: MsgType.Text, body: msg.body });
  }

  /** Both servers hold the message `label` as ciphertext only. */
  async function expectCiphertextOnServers(label: string): Promise<void> {
    const msg = sent.get(label)!;
    for (const [server, acc] of [
      [a, alice],
      [b, bob],
    ] as const) {
      const res = await eventually(trace, `${server.serverName} to hold “${label}”`, async () => {
        const r = await api(server.test, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(msg.eventId)}`, { token: acc.accessToken });
        return r.status === 200 ? r : undefined;
      });
      expect(res.body['type']).toBe('m.room.encrypted');
      const content = res.body['content'] as Record<string, unknown>;
      expect(content['algorithm']).toBe(MEGOLM);
      expect(typeof content['ciphertext']).toBe('string');
      expect(content['body']).toBeUndefined();
      expect(JSON.stringify(res.body)).not.toContain(msg.body);
    }
  }

  async function knowsDevice(viewer: CryptoAccount, owner: CryptoAccount, deviceId: string): Promise<true | undefined> {
    const devices = await cryptoOf(viewer).getUserDeviceInfo([owner.userId]);
    return devices.get(owner.userId)?.has(deviceId) ? true : undefined;
  }

  /** A sync token for `acc` now, from an initial /sync (which acknowledges no to-device message). */
  async function tokenNow(server: FederationServer, acc: CryptoAccount): Promise<string> {
    const res = await api(server.test, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: acc.accessToken });
    expect(res.status).toBe(200);
    return res.body['next_batch'] as string;
  }

  /** GET /keys/changes for `acc` from `from` to now. */
  async function keyChanges(server: FederationServer, acc: CryptoAccount, from: string): Promise<{ changed: string[]; left: string[] }> {
    const to = await tokenNow(server, acc);
    const res = await api(server.test, 'GET', `/_matrix/client/v3/keys/changes?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, { token: acc.accessToken });
    expect(res.status).toBe(200);
    return res.body as { changed: string[]; left: string[] };
  }

  beforeAll(async () => {
    quietSdk();
    const loose = { per_second: 1000, burst_count: 1000 };
    [a, b] = await startFederationServers(2, { yaml: { rc_joins: { local: loose, remote: loose } } });
    const ua = await createUser(a.test, 'alice');
    const ub = await createUser(b.test, 'bob');
    for (const [s, u] of [
      [a, ua],
      [b, ub],
    ] as const)
      expect((await api(s.test, 'POST', '/_matrix/client/v3/logout', { token: u.accessToken, body: {} })).status).toBe(200);
    [alice, bob] = await Promise.all([
      logInWithCrypto(a.url, trace, { user: 'alice', password: ua.password, deviceName: 'A1' }),
      logInWithCrypto(b.url, trace, { user: 'bob', password: ub.password, deviceName: 'B1' }),
    ]);
  }, 120_000);

  afterAll(async () => {
    for (const acc of [alice, bob, alice2]) acc?.client.stopClient();
    await Promise.all([a?.close(), b?.close()]);
    vi.restoreAllMocks();
  });

  it('alice on A opens an encrypted DM with bob on B as Element does; bob joins over federation', async () => {
    expect(alice.userId.endsWith(`:${a.serverName}`)).toBe(true);
    expect(bob.userId.endsWith(`:${b.serverName}`)).toBe(true);
    const invited = eventually(trace, 'bob to see the invite', () => (bob.client.getRoom(roomId)?.getMyMembership() === 'invite' ? true : undefined));
    const created = await alice.client.createRoom({
      preset: Preset.TrustedPrivateChat,
      is_direct: true,
      invite: [bob.userId],
      initial_state: [{ type: EventType.RoomEncryption, state_key: '', content: { algorithm: MEGOLM } }],
    });
    roomId = created.room_id;
    await alice.client.setAccountData(EventType.Direct, { [bob.userId]: [roomId] });
    await invited;
    expect(bob.client.getRoom(roomId)?.getDMInviter()).toBe(alice.userId);
    await bob.client.joinRoom(roomId);
    await bob.client.setAccountData(EventType.Direct, { [alice.userId]: [roomId] });
    await eventually(trace, 'alice to see bob join', () => (alice.client.getRoom(roomId)?.getMember(bob.userId)?.membership === 'join' ? true : undefined));
    for (const acc of [alice, bob]) {
      await eventually(trace, `${acc.deviceId} to treat the room as encrypted`, async () => ((await cryptoOf(acc).isEncryptionEnabledInRoom(roomId)) ? true : undefined));
    }
  });

  it('alice sends an encrypted message and bob on the other server reads it; both servers hold only ciphertext', async () => {
    await send(alice, 'hello');
    await reads(bob, 'hello', alice);
    await expectCiphertextOnServers('hello');
    expect(await knowsDevice(bob, alice, alice.deviceId)).toBe(true);
  });

  it('bob replies and alice reads it; more messages flow both ways', async () => {
    await send(bob, 'reply');
    await reads(alice, 'reply', bob);
    await expectCiphertextOnServers('reply');
    expect(await knowsDevice(alice, bob, bob.deviceId)).toBe(true);
    for (let i = 0; i < 2; i++) {
      await send(alice, `alice ${i}`);
      await send(bob, `bob ${i}`);
    }
    for (let i = 0; i < 2; i++) {
      await reads(bob, `alice ${i}`, alice);
      await reads(alice, `bob ${i}`, bob);
    }
  });

  it('a second device of alice reaches bob’s client through the device-list EDU and reads the next message', async () => {
    const before = await tokenNow(b, bob);
    const a2 = await logInWithCrypto(a.url, trace, { user: 'alice', password: alice.password, deviceName: 'A2', initialSyncLimit: 50 });
    alice2 = a2;
    // B learnt of the change from A's m.device_list_update EDU and lists alice as changed for bob.
    await eventually(trace, 'B to list alice’s devices as changed for bob', async () => ((await keyChanges(b, bob, before)).changed.includes(alice.userId) ? true : undefined));
    await eventually(trace, 'bob’s client to learn of alice’s new device', () => knowsDevice(bob, alice, a2.deviceId));
    await eventually(trace, 'A2 to treat the room as encrypted', async () => ((await cryptoOf(a2).isEncryptionEnabledInRoom(roomId)) ? true : undefined));

    await send(bob, 'to both of alice’s devices');
    await reads(a2, 'to both of alice’s devices', bob);
    await reads(alice, 'to both of alice’s devices', bob);

    await send(a2, 'from A2');
    await reads(bob, 'from A2', alice);
    await expectCiphertextOnServers('from A2');
  });

  it('once bob leaves, each server lists the other user under device_lists left', async () => {
    const before = await tokenNow(a, alice);
    const beforeOnB = await tokenNow(b, bob);
    await bob.client.leave(roomId);
    await eventually(trace, 'A to list bob as left for alice', async () => ((await keyChanges(a, alice, before)).left.includes(bob.userId) ? true : undefined));
    // And B lists alice as left for bob.
    expect((await keyChanges(b, bob, beforeOnB)).left).toContain(alice.userId);
  });
});
