/**
 * End-to-end encryption with a real crypto stack: matrix-js-sdk clients
 * using the SDK's Rust crypto (matrix-sdk-crypto, built to WASM) talk to the
 * running server. Alice opens an encrypted DM with bob the way Element
 * does, they read each other's messages, a second device of alice logged in
 * later is noticed by everyone and reads what is sent after it arrived,
 * cross-signing is set up, and with key backup the late device reads the
 * history too. All along, the server only ever holds ciphertext.
 *
 * This exercises /keys/upload, /keys/query, /keys/claim, the device lists
 * and one-time key counts in /sync, /sendToDevice and to_device delivery,
 * /keys/device_signing/upload, /keys/signatures/upload and /room_keys.
 * A timed-out wait prints the failed and the recent e2ee HTTP exchanges
 * (AXON_E2E_TRACE=1 prints every exchange, AXON_E2E_LOG=1 the SDK's logs).
 */
import { EventType, type MatrixClient, type MatrixEvent, MsgType, Preset } from 'matrix-js-sdk';
import type { CryptoApi } from 'matrix-js-sdk/lib/crypto-api/index.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type CryptoAccount, eventually, HttpTrace, logInWithCrypto, passwordAuth, quietSdk } from '../helpers/crypto-client.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
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

describe('encrypted chat between matrix-js-sdk clients with Rust crypto', () => {
  const trace = new HttpTrace();
  let t: TestServer;
  let alice: CryptoAccount; // device A1
  let bob: CryptoAccount;
  let alice2: CryptoAccount | undefined; // device A2, logged in later
  let roomId: string;
  /** Messages by label: event id and plaintext. */
  const sent = new Map<string, { eventId: string; body: string }>();

  /** Sends an encrypted text message from `from` and remembers it under `label`. */
  async function send(from: CryptoAccount, label: string): Promise<string> {
    const body = `${label}: ${Math.random().toString(36).slice(2)}`;
    const { event_id } = await from.client.sendMessage(roomId, { msgtype: MsgType.Text, body });
    sent.set(label, { eventId: event_id, body });
    return event_id;
  }

  /** Waits until `reader` has decrypted the message `label`, and checks it. */
  async function reads(reader: CryptoAccount, label: string, from: CryptoAccount): Promise<MatrixEvent> {
    const msg = sent.get(label);
    if (!msg) throw new Error(`no message ${label}`);
    const ev = await eventually(trace, `${reader.deviceId} (${reader.userId}) to decrypt “${label}”`, () => decrypted(reader.client, roomId, msg.eventId));
    expect(ev.isEncrypted()).toBe(true);
    expect(ev.getWireType()).toBe(EventType.RoomMessageEncrypted);
    expect(ev.getWireContent()['algorithm']).toBe(MEGOLM);
    expect(ev.getSender()).toBe(from.userId);
    expect(ev.getClearContent()).toMatchObject({ msgtype: MsgType.Text, body: msg.body });
    return ev;
  }

  /** What the server holds for the message `label`, fetched over plain HTTP: ciphertext only. */
  async function expectCiphertextOnServer(label: string): Promise<void> {
    const msg = sent.get(label)!;
    const res = await api(t, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(msg.eventId)}`, { token: bob.accessToken });
    expect(res.status).toBe(200);
    expect(res.body['type']).toBe('m.room.encrypted');
    const content = res.body['content'] as Record<string, unknown>;
    expect(content['algorithm']).toBe(MEGOLM);
    expect(typeof content['ciphertext']).toBe('string');
    expect(typeof content['session_id']).toBe('string');
    expect(content['body']).toBeUndefined();
    expect(JSON.stringify(res.body)).not.toContain(msg.body);
  }

  async function knowsDevice(viewer: CryptoAccount, owner: CryptoAccount, deviceId: string): Promise<true | undefined> {
    const devices = await cryptoOf(viewer).getUserDeviceInfo([owner.userId]);
    return devices.get(owner.userId)?.has(deviceId) ? true : undefined;
  }

  beforeAll(async () => {
    quietSdk();
    const loose = { per_second: 1000, burst_count: 1000 };
    t = await startTestServer({ yaml: { rc_joins: { local: loose, remote: loose } } });
    const a = await createUser(t, 'alice');
    const b = await createUser(t, 'bob');
    // The fixtures' own sessions are not needed: the SDK logs in its devices.
    for (const u of [a, b]) expect((await api(t, 'POST', '/_matrix/client/v3/logout', { token: u.accessToken, body: {} })).status).toBe(200);
    alice = await logInWithCrypto(t.url, trace, { user: 'alice', password: a.password, deviceName: 'A1' });
    bob = await logInWithCrypto(t.url, trace, { user: 'bob', password: b.password, deviceName: 'B1' });
  }, 120_000);

  afterAll(async () => {
    for (const acc of [alice, bob, alice2]) acc?.client.stopClient();
    await t?.close();
    vi.restoreAllMocks();
  });

  it('each client uploads its device keys and sees its own device through /keys/query', async () => {
    for (const acc of [alice, bob]) {
      const own = await cryptoOf(acc).getOwnDeviceKeys();
      // The client uploads its keys in the background after its first sync.
      const keys = await eventually(trace, `${acc.deviceId}'s device keys`, async () => {
        const res = await api(t, 'POST', '/_matrix/client/v3/keys/query', { token: acc.accessToken, body: { device_keys: { [acc.userId]: [] } } });
        expect(res.status).toBe(200);
        return (res.body['device_keys'] as Record<string, Record<string, { keys: Record<string, string> }>>)[acc.userId]?.[acc.deviceId];
      });
      expect(keys?.keys[`ed25519:${acc.deviceId}`]).toBe(own.ed25519);
      expect(keys?.keys[`curve25519:${acc.deviceId}`]).toBe(own.curve25519);
      // One-time keys were uploaded and are counted for the device.
      await eventually(trace, `${acc.deviceId}'s one-time keys`, async () => {
        const up = await api(t, 'POST', '/_matrix/client/v3/keys/upload', { token: acc.accessToken, body: {} });
        const count = (up.body['one_time_key_counts'] as Record<string, number> | undefined)?.['signed_curve25519'] ?? 0;
        return up.status === 200 && count > 0 ? true : undefined;
      });
    }
  });

  it('alice opens an encrypted DM with bob as Element does; bob joins', async () => {
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
    // The invite is marked as a DM.
    expect(bob.client.getRoom(roomId)?.getDMInviter()).toBe(alice.userId);
    await bob.client.joinRoom(roomId);
    await bob.client.setAccountData(EventType.Direct, { [alice.userId]: [roomId] });
    await eventually(trace, 'alice to see bob join', () => (alice.client.getRoom(roomId)?.getMember(bob.userId)?.membership === 'join' ? true : undefined));
    // Both crypto stacks know the room is encrypted (the SDK would send plaintext otherwise).
    for (const acc of [alice, bob]) {
      await eventually(trace, `${acc.deviceId} to treat the room as encrypted`, async () => ((await cryptoOf(acc).isEncryptionEnabledInRoom(roomId)) ? true : undefined));
    }
  });

  it('alice sends an encrypted message and bob reads it; the server holds only ciphertext', async () => {
    await send(alice, 'hello');
    await reads(bob, 'hello', alice);
    await expectCiphertextOnServer('hello');
    // Bob's client found alice's device through /keys/query.
    expect(await knowsDevice(bob, alice, alice.deviceId)).toBe(true);
  });

  it('bob replies and alice reads it', async () => {
    await send(bob, 'reply');
    await reads(alice, 'reply', bob);
    await expectCiphertextOnServer('reply');
    // A few more each way, through the sessions now set up.
    for (let i = 0; i < 3; i++) {
      await send(alice, `alice ${i}`);
      await send(bob, `bob ${i}`);
    }
    for (let i = 0; i < 3; i++) {
      await reads(bob, `alice ${i}`, alice);
      await reads(alice, `bob ${i}`, bob);
    }
  });

  it('a second device of alice, logged in later, is noticed by both clients and reads what is sent after it', async () => {
    const a2 = await logInWithCrypto(t.url, trace, { user: 'alice', password: alice.password, deviceName: 'A2', initialSyncLimit: 50 });
    alice2 = a2;
    // Device list changes reach bob (who shares the room) and alice's first device through /sync.
    await eventually(trace, 'bob’s client to learn of alice’s new device', () => knowsDevice(bob, alice, a2.deviceId));
    await eventually(trace, 'alice’s first device to learn of her new device', () => knowsDevice(alice, alice, a2.deviceId));
    const seenByBob = (await cryptoOf(bob).getUserDeviceInfo([alice.userId])).get(alice.userId)?.get(a2.deviceId);
    expect(seenByBob?.displayName).toBe('A2');
    await eventually(trace, 'A2 to treat the room as encrypted', async () => ((await cryptoOf(a2).isEncryptionEnabledInRoom(roomId)) ? true : undefined));

    await send(bob, 'to both of alice’s devices');
    await reads(a2, 'to both of alice’s devices', bob);
    await reads(alice, 'to both of alice’s devices', bob);

    await send(alice, 'from A1 after A2');
    await reads(a2, 'from A1 after A2', alice);
    await reads(bob, 'from A1 after A2', alice);

    await send(a2, 'from A2');
    await reads(bob, 'from A2', alice);
    await reads(alice, 'from A2', alice);
    await expectCiphertextOnServer('from A2');
  });

  it('alice sets up cross-signing; bob sees her devices signed by her', async () => {
    const crypto = cryptoOf(alice);
    await crypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: passwordAuth(alice) });
    await eventually(trace, 'alice’s cross-signing to be ready', async () => ((await crypto.isCrossSigningReady()) ? true : undefined));
    // The public keys are on the server.
    const res = await api(t, 'POST', '/_matrix/client/v3/keys/query', { token: bob.accessToken, body: { device_keys: { [alice.userId]: [] } } });
    expect(res.status).toBe(200);
    expect((res.body['master_keys'] as Record<string, { usage: string[] }>)[alice.userId]?.usage).toEqual(['master']);
    expect((res.body['self_signing_keys'] as Record<string, { usage: string[] }>)[alice.userId]?.usage).toEqual(['self_signing']);
    // Bob's client refetches alice's keys and sees A1 signed by its owner.
    await eventually(trace, 'bob to see A1 signed by alice', async () =>
      (await cryptoOf(bob).getDeviceVerificationStatus(alice.userId, alice.deviceId))?.signedByOwner ? true : undefined,
    );
    // A1 signs A2 (as after verifying it); bob and A2 itself see the signature.
    const a2 = alice2!;
    await crypto.crossSignDevice(a2.deviceId);
    await eventually(trace, 'bob to see A2 signed by alice', async () =>
      (await cryptoOf(bob).getDeviceVerificationStatus(alice.userId, a2.deviceId))?.signedByOwner ? true : undefined,
    );
    await eventually(trace, 'A2 to see itself signed by alice', async () =>
      (await cryptoOf(a2).getDeviceVerificationStatus(alice.userId, a2.deviceId))?.signedByOwner ? true : undefined,
    );
    // Messages still flow once identities exist.
    await send(bob, 'after cross-signing');
    await reads(alice, 'after cross-signing', bob);
    await reads(a2, 'after cross-signing', bob);
  });

  it('with key backup, alice’s second device reads the messages sent before it existed', async () => {
    const crypto = cryptoOf(alice);
    await crypto.resetKeyBackup();
    // The SDK enables the new backup in the background once it has checked it on the server.
    const version = await eventually(trace, 'A1 to enable the new key backup', async () => (await crypto.getActiveSessionBackupVersion()) ?? undefined);
    // A1 uploads the keys of the room's sessions (alice's own and bob's) to the backup.
    const info = await eventually(trace, 'the room keys to be backed up', async () => {
      const r = await api(t, 'GET', '/_matrix/client/v3/room_keys/version', { token: alice.accessToken });
      return r.status === 200 && r.body['version'] === version && Number(r.body['count']) >= 2 ? r.body : undefined;
    });
    expect(info['algorithm']).toBe('m.megolm_backup.v1.curve25519-aes-sha2');
    // The server holds the sessions encrypted to the backup key.
    const stored = await api(t, 'GET', `/_matrix/client/v3/room_keys/keys/${encodeURIComponent(roomId)}?version=${encodeURIComponent(version)}`, { token: alice.accessToken });
    expect(stored.status).toBe(200);
    const sessions = Object.values((stored.body['sessions'] ?? {}) as Record<string, { session_data: Record<string, unknown> }>);
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    for (const s of sessions) expect(Object.keys(s.session_data).sort()).toEqual(['ciphertext', 'ephemeral', 'mac']);

    // A2 is given the backup key (Element gets it from secret storage or over verification) and restores.
    const a2 = alice2!;
    const key = await crypto.getSessionBackupPrivateKey();
    expect(key).toBeTruthy();
    await cryptoOf(a2).storeSessionBackupPrivateKey(key!, version);
    const restored = await cryptoOf(a2).restoreKeyBackup();
    expect(restored.total).toBeGreaterThanOrEqual(2);

    // The first messages, sent before A2 existed, now decrypt on A2.
    for (const [label, from] of [
      ['hello', alice],
      ['reply', bob],
    ] as const) {
      const msg = sent.get(label)!;
      const raw = await a2.client.fetchRoomEvent(roomId, msg.eventId);
      const ev = a2.client.getEventMapper()(raw);
      await a2.client.decryptEventIfNeeded(ev);
      await eventually(trace, `A2 to decrypt “${label}” from the backup`, () =>
        !ev.isBeingDecrypted() && !ev.isDecryptionFailure() && ev.getType() === EventType.RoomMessage ? true : undefined,
      );
      expect(ev.getSender()).toBe(from.userId);
      expect(ev.getClearContent()?.['body']).toBe(msg.body);
    }
  });
});
