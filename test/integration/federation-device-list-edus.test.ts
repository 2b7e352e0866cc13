/**
 * The m.device_list_update EDUs we send chain as Synapse expects: each
 * names the previous change of the user's device list in `prev_id` (empty
 * only for the first), so a receiver that holds the list at that position
 * can apply it without asking /user/devices again, and the chain meets
 * /user/devices' `stream_id`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestDeviceListChange } from '../../src/storage/device-lists.js';
import { joinRemoteUser, startFakeRemote, waitUntil, type FakeRemote } from '../helpers/fake-remote.js';
import { startFederationServer, type FederationServer } from '../helpers/federation.js';
import { deviceKeys } from '../helpers/e2e-keys.js';
import { roomHelpers, signIn } from '../helpers/rooms.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Edu = { edu_type: string; content: Record<string, unknown> };

describe('outbound m.device_list_update EDUs', () => {
  let remote: FakeRemote;
  let fed: FederationServer;
  let alice: TestUser;
  const h = roomHelpers(() => fed.test);

  beforeAll(async () => {
    remote = await startFakeRemote();
    fed = await startFederationServer();
    alice = await createUser(fed.test, 'alice');
  });
  afterAll(async () => {
    await fed?.close();
    await remote?.close();
  });

  const deviceEdus = (): Edu[] => remote.sends.flatMap((s) => s.body.edus).filter((e) => e.edu_type === 'm.device_list_update');

  async function uploadKeys(u: TestUser): Promise<void> {
    const res = await api(fed.test, 'POST', '/_matrix/client/v3/keys/upload', { token: u.accessToken, body: { device_keys: deviceKeys(u.userId, u.deviceId).deviceKeys } });
    expect(res.status).toBe(200);
  }

  it('carry the device’s keys and the previous change as prev_id, ending at /user/devices’ stream_id', async () => {
    const roomId = await h.createRoom(alice, { preset: 'public_chat' });
    await joinRemoteUser(fed.test, remote, roomId, `@x:${remote.serverName}`);
    await uploadKeys(alice);
    await waitUntil(() => deviceEdus().some((e) => e.content['device_id'] === alice.deviceId), 'the first device’s EDU');
    const second = await signIn(fed.test, alice);
    await uploadKeys(second);
    await waitUntil(() => deviceEdus().some((e) => e.content['device_id'] === second.deviceId && e.content['deleted'] === false), 'the second device’s EDU');

    const first = deviceEdus()
      .filter((e) => e.content['device_id'] === alice.deviceId)
      .at(-1)!;
    const last = deviceEdus().at(-1)!;
    expect(last.content).toMatchObject({ user_id: alice.userId, device_id: second.deviceId, deleted: false });
    expect((last.content['keys'] as { device_id: string }).device_id).toBe(second.deviceId);
    const prev = last.content['prev_id'] as number[];
    expect(prev).toHaveLength(1);
    expect(prev[0]).toBeLessThan(last.content['stream_id'] as number);
    expect(prev[0]).toBeGreaterThanOrEqual(first.content['stream_id'] as number);
    // Every EDU after the first names a change before it.
    for (const e of deviceEdus().slice(1)) expect((e.content['prev_id'] as number[])[0]).toBeLessThan(e.content['stream_id'] as number);
    // What /user/devices reports is the newest change, the one the last EDU carried.
    expect(await latestDeviceListChange(fed.test.server.ctx.database.db, alice.userId)).toBe(last.content['stream_id']);
  });
});
