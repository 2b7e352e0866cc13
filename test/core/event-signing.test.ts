import { describe, expect, it } from 'vitest';
import nacl from 'tweetnacl';
import type { KeyObject } from 'node:crypto';
import { decodeBase64, encodeBase64 } from '../../src/core/base64.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { checkEventSignatures, hashAndSignEvent, requiredSigningServers, SigningServersError, verifyEventSignature, type ServerKeys } from '../../src/core/event-signing.js';
import { checkContentHash } from '../../src/core/hashes.js';
import { redact } from '../../src/core/redaction.js';
import { UnsupportedRoomVersionError } from '../../src/core/room-versions.js';
import { publicKeyObject, signingKeyFromSeed, signJsonWithKey } from '../../src/core/signing.js';

// The spec's appendix "Cryptographic Test Vectors" > "Event Signing".
const SEED = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');
const KEY = signingKeyFromSeed('1', SEED);

const MINIMAL_EVENT = {
  room_id: '!x:domain',
  sender: '@a:domain',
  origin: 'domain',
  origin_server_ts: 1000000,
  signatures: {},
  hashes: {},
  type: 'X',
  content: {},
  prev_events: [],
  auth_events: [],
  depth: 3,
  unsigned: { age_ts: 1000000 },
};
const MINIMAL_SIGNED = {
  auth_events: [],
  content: {},
  depth: 3,
  hashes: { sha256: '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos' },
  origin: 'domain',
  origin_server_ts: 1000000,
  prev_events: [],
  room_id: '!x:domain',
  sender: '@a:domain',
  signatures: {
    domain: {
      'ed25519:1': 'KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg',
    },
  },
  type: 'X',
  unsigned: { age_ts: 1000000 },
};

const REDACTABLE_EVENT = {
  content: { body: 'Here is the message content' },
  event_id: '$0:domain',
  origin: 'domain',
  origin_server_ts: 1000000,
  type: 'm.room.message',
  room_id: '!r:domain',
  sender: '@u:domain',
  signatures: {},
  unsigned: { age_ts: 1000000 },
};
const REDACTABLE_SIGNED = {
  content: { body: 'Here is the message content' },
  event_id: '$0:domain',
  hashes: { sha256: 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g' },
  origin: 'domain',
  origin_server_ts: 1000000,
  type: 'm.room.message',
  room_id: '!r:domain',
  sender: '@u:domain',
  signatures: {
    domain: {
      'ed25519:1': 'Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA',
    },
  },
  unsigned: { age_ts: 1000000 },
};

// The vectors keep `origin` in the signed part: every version before v11.
const PRE_V11 = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'];

describe('hashAndSignEvent: spec vectors', () => {
  it.each(PRE_V11)('signs the minimal event exactly as the spec shows (v%s)', (v) => {
    expect(hashAndSignEvent(MINIMAL_EVENT, v, 'domain', KEY)).toEqual(MINIMAL_SIGNED);
  });

  it.each(PRE_V11)('signs the event with redactable content exactly as the spec shows (v%s)', (v) => {
    expect(hashAndSignEvent(REDACTABLE_EVENT, v, 'domain', KEY)).toEqual(REDACTABLE_SIGNED);
  });

  it('in v11+ the hash is the same but the signature differs, as `origin` is no longer signed', () => {
    for (const v of ['11', '12']) {
      const signed = hashAndSignEvent(MINIMAL_EVENT, v, 'domain', KEY);
      expect(signed.hashes).toEqual(MINIMAL_SIGNED.hashes);
      expect(signed.signatures['domain']!['ed25519:1']).not.toBe(MINIMAL_SIGNED.signatures.domain['ed25519:1']);
      expect(verifyEventSignature(signed, v, 'domain', 'ed25519:1', KEY.publicKey)).toBe(true);
    }
  });

  it('the signature is tweetnacl’s over the canonical redacted event', () => {
    const redacted = redact({ ...REDACTABLE_EVENT, hashes: REDACTABLE_SIGNED.hashes }, '1');
    delete redacted['signatures'];
    const message = new TextEncoder().encode(canonicalJson(redacted));
    const sig = nacl.sign.detached(message, nacl.sign.keyPair.fromSeed(SEED).secretKey);
    expect(encodeBase64(sig)).toBe(REDACTABLE_SIGNED.signatures.domain['ed25519:1']);
  });

  it('does not mutate its input and keeps signatures already present', () => {
    const input = { ...MINIMAL_EVENT, signatures: { 'other.example': { 'ed25519:x': 'abc' } } };
    const before = structuredClone(input);
    const signed = hashAndSignEvent(input, '10', 'domain', KEY);
    expect(input).toEqual(before);
    expect(signed.signatures['other.example']).toEqual({ 'ed25519:x': 'abc' });
    expect(signed.signatures['domain']!['ed25519:1']).toBe(MINIMAL_SIGNED.signatures.domain['ed25519:1']);
  });

  it('throws for an unknown room version', () => {
    expect(() => hashAndSignEvent(MINIMAL_EVENT, '99', 'domain', KEY)).toThrow(UnsupportedRoomVersionError);
  });
});

describe('verifyEventSignature', () => {
  it('accepts the spec’s signed events', () => {
    expect(verifyEventSignature(MINIMAL_SIGNED, '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(true);
    expect(verifyEventSignature(REDACTABLE_SIGNED, '1', 'domain', 'ed25519:1', publicKeyObject(KEY.publicKey))).toBe(true);
  });

  it('accepts a redacted copy and a copy with non-essential content changed (the hash check catches that)', () => {
    const redacted = redact(REDACTABLE_SIGNED, '1');
    expect(verifyEventSignature(redacted, '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(true);
    const edited = { ...REDACTABLE_SIGNED, content: { body: 'changed' } };
    expect(verifyEventSignature(edited, '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(true);
    expect(checkContentHash(edited)).toBe(false);
    expect(checkContentHash(REDACTABLE_SIGNED)).toBe(true);
  });

  it('rejects a change to an essential key', () => {
    expect(verifyEventSignature({ ...REDACTABLE_SIGNED, depth: 4 }, '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(false);
    expect(verifyEventSignature({ ...REDACTABLE_SIGNED, sender: '@v:domain' }, '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(false);
    expect(verifyEventSignature({ ...REDACTABLE_SIGNED, hashes: MINIMAL_SIGNED.hashes }, '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(false);
  });

  it('depends on the room version’s redaction algorithm', () => {
    // Signed under v1 rules (origin covered); checked under v11 rules (origin not covered).
    expect(verifyEventSignature(MINIMAL_SIGNED, '11', 'domain', 'ed25519:1', KEY.publicKey)).toBe(false);
  });

  it('is false, never a throw, for bad input', () => {
    expect(verifyEventSignature(MINIMAL_SIGNED, '99', 'domain', 'ed25519:1', KEY.publicKey)).toBe(false);
    expect(verifyEventSignature(null, '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(false);
    expect(verifyEventSignature([MINIMAL_SIGNED], '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(false);
    expect(verifyEventSignature(MINIMAL_SIGNED, '1', 'domain', 'ed25519:1', new Uint8Array(5))).toBe(false);
    expect(verifyEventSignature({ ...MINIMAL_SIGNED, depth: 1.5 }, '1', 'domain', 'ed25519:1', KEY.publicKey)).toBe(false);
    expect(verifyEventSignature(MINIMAL_SIGNED, '1', 'other', 'ed25519:1', KEY.publicKey)).toBe(false);
  });
});

describe('requiredSigningServers', () => {
  const base = {
    type: 'm.room.message',
    sender: '@a:one.example',
    room_id: '!r:one.example',
    content: {},
    event_id: '$e:two.example',
  };

  it('is the sender’s server from v3 on', () => {
    for (const v of ['3', '4', '10', '11', '12']) expect(requiredSigningServers(base, v)).toEqual(['one.example']);
  });

  it('also needs the event id’s server in v1 and v2, once if they are the same', () => {
    for (const v of ['1', '2']) {
      expect(requiredSigningServers(base, v)).toEqual(['one.example', 'two.example']);
      expect(requiredSigningServers({ ...base, event_id: '$e:one.example' }, v)).toEqual(['one.example']);
    }
  });

  it('handles server names with ports and IPv6 literals', () => {
    expect(requiredSigningServers({ ...base, sender: '@a:[::1]:8448' }, '10')).toEqual(['[::1]:8448']);
    expect(requiredSigningServers({ ...base, sender: '@a:example.org:8448' }, '10')).toEqual(['example.org:8448']);
  });

  const authorisedJoin = {
    ...base,
    type: 'm.room.member',
    state_key: '@a:one.example',
    content: { membership: 'join', join_authorised_via_users_server: '@admin:three.example' },
  };
  it('adds the authorising server of a restricted join from v8', () => {
    for (const v of ['8', '9', '10', '11', '12']) {
      expect(requiredSigningServers(authorisedJoin, v)).toEqual(['one.example', 'three.example']);
    }
  });
  it('not before v8, nor for other memberships', () => {
    expect(requiredSigningServers(authorisedJoin, '7')).toEqual(['one.example']);
    const leave = { ...authorisedJoin, content: { ...authorisedJoin.content, membership: 'leave' } };
    expect(requiredSigningServers(leave, '10')).toEqual(['one.example']);
  });

  const thirdPartyInvite = {
    ...base,
    type: 'm.room.member',
    state_key: '@b:two.example',
    content: { membership: 'invite', third_party_invite: { signed: { mxid: '@b:two.example', token: 't' } } },
  };
  it('does not need the sender’s server for an invite from a third-party invite', () => {
    expect(requiredSigningServers(thirdPartyInvite, '10')).toEqual([]);
    expect(requiredSigningServers(thirdPartyInvite, '1')).toEqual(['two.example']);
    const plainInvite = { ...thirdPartyInvite, content: { membership: 'invite' } };
    expect(requiredSigningServers(plainInvite, '10')).toEqual(['one.example']);
  });

  it('throws when an id has no server name, so callers fail closed', () => {
    expect(() => requiredSigningServers({ ...base, sender: 'nobody' }, '10')).toThrow(SigningServersError);
    expect(() => requiredSigningServers({ ...base, sender: 5 }, '10')).toThrow(SigningServersError);
    expect(() => requiredSigningServers({ ...base, event_id: '$nohost' }, '1')).toThrow(SigningServersError);
    expect(() => requiredSigningServers({ ...authorisedJoin, content: { membership: 'join', join_authorised_via_users_server: 'x' } }, '10')).toThrow(SigningServersError);
    expect(() => requiredSigningServers(base, '0')).toThrow(UnsupportedRoomVersionError);
  });
});

describe('checkEventSignatures', () => {
  const one = signingKeyFromSeed('a_one', new Uint8Array(32).fill(1));
  const oneOld = signingKeyFromSeed('a_old', new Uint8Array(32).fill(4));
  const three = signingKeyFromSeed('a_thr', new Uint8Array(32).fill(3));
  const keys = new Map<string, ServerKeys>([
    [
      'one.example',
      new Map<string, Uint8Array | KeyObject>([
        [one.keyId, one.publicKey],
        [oneOld.keyId, publicKeyObject(oneOld.publicKey)],
      ]),
    ],
    ['three.example', new Map([[three.keyId, three.publicKey]])],
  ]);
  const keysFor = (s: string): ServerKeys | undefined => keys.get(s);
  const join = {
    type: 'm.room.member',
    state_key: '@a:one.example',
    sender: '@a:one.example',
    room_id: '!r:one.example',
    content: { membership: 'join', join_authorised_via_users_server: '@admin:three.example' },
    origin_server_ts: 5,
    depth: 3,
    prev_events: [],
    auth_events: [],
  };
  const signedByOne = hashAndSignEvent(join, '10', 'one.example', one);
  const signedByBoth = hashAndSignEvent(signedByOne, '10', 'three.example', three);

  it('passes when every required server signed with a known key', () => {
    expect(checkEventSignatures(signedByBoth, '10', keysFor)).toEqual({ ok: true });
  });

  it('fails when the authorising server did not sign', () => {
    const r = checkEventSignatures(signedByOne, '10', keysFor);
    expect(r.ok).toBe(false);
  });

  it('skips unknown key ids but needs at least one known one', () => {
    const extra = signJsonWithKey(redact(signedByBoth, '10'), 'one.example', signingKeyFromSeed('a_unk', new Uint8Array(32).fill(9)));
    const withUnknown = { ...signedByBoth, signatures: extra.signatures };
    expect(checkEventSignatures(withUnknown, '10', keysFor)).toEqual({ ok: true });
    const onlyUnknown = {
      ...signedByBoth,
      signatures: { 'one.example': { 'ed25519:a_unk': extra.signatures['one.example']!['ed25519:a_unk']! }, 'three.example': signedByBoth.signatures['three.example']! },
    };
    expect(checkEventSignatures(onlyUnknown, '10', keysFor).ok).toBe(false);
    expect(checkEventSignatures(signedByBoth, '10', () => undefined).ok).toBe(false);
  });

  it('fails if any signature by a known key is bad, even beside a good one', () => {
    const bad = {
      ...signedByBoth,
      signatures: { ...signedByBoth.signatures, 'one.example': { ...signedByBoth.signatures['one.example'], [oneOld.keyId]: signedByBoth.signatures['one.example']![one.keyId]! } },
    };
    expect(checkEventSignatures(bad, '10', keysFor).ok).toBe(false);
  });

  it('fails for tampering and for bad input, without throwing', () => {
    expect(checkEventSignatures({ ...signedByBoth, depth: 9 }, '10', keysFor).ok).toBe(false);
    expect(checkEventSignatures({ ...signedByBoth, sender: 'bad' }, '10', keysFor).ok).toBe(false);
    expect(checkEventSignatures(null, '10', keysFor).ok).toBe(false);
    expect(checkEventSignatures(signedByBoth, '99', keysFor).ok).toBe(false);
    expect(checkEventSignatures({ ...signedByBoth, signatures: 'x' }, '10', keysFor).ok).toBe(false);
  });
});
