import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'vitest';
import { encodeBase64, encodeBase64Url } from '../../src/core/base64.js';
import type { JsonObject, PDU } from '../../src/core/pdu.js';
import { signJsonWithKey } from '../../src/core/signing.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, TestRoom, addMember, expectAllowed, expectDenied, standardRoom } from './fixtures/auth.js';

interface Ed25519 {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

function newKey(): Ed25519 {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return { privateKey, publicKey: Buffer.from(jwk.x as string, 'base64url') };
}

const ID_SERVER = 'id.example.org';
const TOKEN = 'abc123';

function signedBlock(key: Ed25519, mxid: string, token = TOKEN): JsonObject {
  return signJsonWithKey({ mxid, sender: ALICE, token }, ID_SERVER, { keyId: 'ed25519:0', privateKey: key.privateKey }) as unknown as JsonObject;
}

/** A room where ALICE has sent an m.room.third_party_invite with `inviteContent`. */
function roomWithInvite(v: string, inviteContent: JsonObject, sender = ALICE): TestRoom {
  const room = addMember(standardRoom(v), CAROL);
  room.apply(
    room.event({
      type: 'm.room.third_party_invite',
      sender,
      state_key: TOKEN,
      content: { display_name: 'b...@example.com', key_validity_url: 'https://id.example.org/v', ...inviteContent },
    }),
  );
  return room;
}

function thirdPartyInvite(room: TestRoom, sender: string, target: string, signed: JsonObject | undefined): PDU {
  const tpi: JsonObject = { display_name: 'b...@example.com' };
  if (signed !== undefined) tpi['signed'] = signed;
  return room.member(sender, target, 'invite', { third_party_invite: tpi });
}

describe('m.room.member invite with third_party_invite', () => {
  it.each(ALL_VERSIONS)('v%s: a signature by the public_key of the invite is accepted', (v) => {
    const key = newKey();
    const room = roomWithInvite(v, { public_key: encodeBase64(key.publicKey) });
    expectAllowed(room.check(thirdPartyInvite(room, ALICE, BOB, signedBlock(key, BOB))));
  });

  it.each(ALL_VERSIONS)('v%s: a signature by any key in public_keys (URL-safe base64) is accepted', (v) => {
    const other = newKey();
    const key = newKey();
    const room = roomWithInvite(v, {
      public_key: encodeBase64(other.publicKey),
      public_keys: [{ public_key: encodeBase64(other.publicKey) }, { public_key: encodeBase64Url(key.publicKey) }],
    });
    expectAllowed(room.check(thirdPartyInvite(room, ALICE, BOB, signedBlock(key, BOB))));
  });

  it.each(ALL_VERSIONS)('v%s: a signature by a key the invite does not list is rejected', (v) => {
    const room = roomWithInvite(v, { public_key: encodeBase64(newKey().publicKey) });
    expectDenied(
      room.check(thirdPartyInvite(room, ALICE, BOB, signedBlock(newKey(), BOB))),
      /^m\.room\.member invite \(third-party\): no signature in `signed` verifies with a public key/,
    );
  });

  it.each(ALL_VERSIONS)('v%s: a signed block altered after signing is rejected', (v) => {
    const key = newKey();
    const room = roomWithInvite(v, { public_key: encodeBase64(key.publicKey) });
    const signed = { ...signedBlock(key, BOB), extra: 'x' };
    expectDenied(room.check(thirdPartyInvite(room, ALICE, BOB, signed)), /^m\.room\.member invite \(third-party\): no signature in `signed` verifies/);
  });

  it.each(ALL_VERSIONS)('v%s: a banned target is rejected', (v) => {
    const key = newKey();
    const room = roomWithInvite(v, { public_key: encodeBase64(key.publicKey) });
    room.apply(room.member(ALICE, BOB, 'ban'));
    expectDenied(room.check(thirdPartyInvite(room, ALICE, BOB, signedBlock(key, BOB))), /^m\.room\.member invite \(third-party\): target user is banned/);
  });

  it.each(ALL_VERSIONS)('v%s: no `signed`, or `signed` without mxid/token, is rejected', (v) => {
    const key = newKey();
    const room = roomWithInvite(v, { public_key: encodeBase64(key.publicKey) });
    expectDenied(room.check(thirdPartyInvite(room, ALICE, BOB, undefined)), /^m\.room\.member invite \(third-party\): third_party_invite has no `signed` object/);
    const noToken = signJsonWithKey({ mxid: BOB }, ID_SERVER, { keyId: 'ed25519:0', privateKey: key.privateKey }) as unknown as JsonObject;
    expectDenied(room.check(thirdPartyInvite(room, ALICE, BOB, noToken)), /^m\.room\.member invite \(third-party\): `signed` lacks `mxid` or `token`/);
  });

  it.each(ALL_VERSIONS)('v%s: mxid must match state_key', (v) => {
    const key = newKey();
    const room = roomWithInvite(v, { public_key: encodeBase64(key.publicKey) });
    expectDenied(
      room.check(thirdPartyInvite(room, ALICE, BOB, signedBlock(key, '@mallory:example.org'))),
      /^m\.room\.member invite \(third-party\): signed\.mxid does not match state_key/,
    );
  });

  it.each(ALL_VERSIONS)('v%s: the token must name an m.room.third_party_invite in the state', (v) => {
    const key = newKey();
    const room = roomWithInvite(v, { public_key: encodeBase64(key.publicKey) });
    expectDenied(
      room.check(thirdPartyInvite(room, ALICE, BOB, signedBlock(key, BOB, 'other-token'))),
      /^m\.room\.member invite \(third-party\): no m\.room\.third_party_invite with state_key matching signed\.token/,
    );
  });

  it.each(ALL_VERSIONS)('v%s: the sender must be the sender of the m.room.third_party_invite', (v) => {
    const key = newKey();
    const room = roomWithInvite(v, { public_key: encodeBase64(key.publicKey) });
    expectDenied(
      room.check(thirdPartyInvite(room, CAROL, BOB, signedBlock(key, BOB))),
      /^m\.room\.member invite \(third-party\): sender does not match the sender of the m\.room\.third_party_invite/,
    );
  });
});

describe('m.room.third_party_invite events', () => {
  it.each(ALL_VERSIONS)('v%s: need the invite level', (v) => {
    const room = addMember(standardRoom(v, { pl: { invite: 20 }, users: { [CAROL]: 10 } }), CAROL);
    const e = (sender: string): PDU => room.event({ type: 'm.room.third_party_invite', sender, state_key: 'tok', content: { display_name: 'x', public_key: 'AAAA' } });
    expectAllowed(room.check(e(ALICE)));
    expectDenied(room.check(e(CAROL)), /^m\.room\.third_party_invite: sender's level 10 is below the invite level 20/);
  });

  it.each(ALL_VERSIONS)('v%s: need the sender joined', (v) => {
    const room = standardRoom(v);
    const e = room.event({ type: 'm.room.third_party_invite', sender: CAROL, state_key: 'tok', content: {} });
    expectDenied(room.check(e), /^m\.room\.third_party_invite: sender is not joined to the room/);
  });
});
