/**
 * Event-core throughput on one core: signing, verification, hashes, event
 * ids, canonical JSON. Prints figures only. Run: npx tsx bench/core-crypto.ts
 *
 * The "node:crypto" rows are the ceiling (raw Ed25519 over prepared bytes
 * with a prepared key); the rows under them are our full paths, so the gap
 * is what canonical JSON, redaction and base64 cost on top.
 */
import { sign, verify } from 'node:crypto';
import { canonicalJson } from '../src/core/canonical-json.js';
import { eventId } from '../src/core/event-id.js';
import { hashAndSignEvent, verifyEventSignature } from '../src/core/event-signing.js';
import { contentHash } from '../src/core/hashes.js';
import { parseStrictJson } from '../src/core/json-parse.js';
import { redact } from '../src/core/redaction.js';
import { publicKeyObject, signedBytes, signingKeyFromSeed, signJsonWithKey, verifyJson } from '../src/core/signing.js';

const ROOM_VERSION = '10';
const key = signingKeyFromSeed('a_bench', new Uint8Array(32).fill(42));
const pubKeyObject = publicKeyObject(key.publicKey);

function id(n: number): string {
  return '$' + Buffer.alloc(32, n).toString('base64url');
}

const message = {
  type: 'm.room.message',
  room_id: '!OGEhHVWSdvArJzumhm:matrix.org',
  sender: '@alice:example.org',
  origin_server_ts: 1_700_000_000_000,
  depth: 123_456,
  prev_events: [id(1)],
  auth_events: [id(2), id(3), id(4)],
  content: {
    msgtype: 'm.text',
    body: 'Did you see the release notes? The new sync is a lot faster on small servers — nice work 🎉',
    format: 'org.matrix.custom.html',
    formatted_body: '<p>Did you see the <a href="https://example.org/notes">release notes</a>? The new sync is a lot faster.</p>',
    'm.mentions': { user_ids: ['@bob:example.org'] },
  },
  unsigned: { age_ts: 1_700_000_000_000 },
};

const membership = {
  type: 'm.room.member',
  room_id: '!OGEhHVWSdvArJzumhm:matrix.org',
  sender: '@carol:example.org',
  state_key: '@carol:example.org',
  origin_server_ts: 1_700_000_000_500,
  depth: 123_457,
  prev_events: [id(5), id(6)],
  auth_events: [id(2), id(3), id(4), id(7)],
  content: {
    membership: 'join',
    displayname: 'Carol Ünïcode-Example (she/her) 🌻',
    avatar_url: 'mxc://example.org/AbCdEfGhIjKlMnOpQrStUvWx',
    join_authorised_via_users_server: '@admin:example.org',
    'io.element.profile': {
      status: 'In meetings until 3pm; ping me on the ops room if it is urgent',
      pronouns: ['she', 'her'],
      links: Array.from({ length: 12 }, (_, i) => ({ url: `https://example.org/profile/${i}`, label: `Link number ${i}` })),
      timezone: 'Europe/Amsterdam',
    },
  },
  unsigned: { age_ts: 1_700_000_000_500 },
};

const powerLevels = {
  type: 'm.room.power_levels',
  room_id: '!OGEhHVWSdvArJzumhm:matrix.org',
  sender: '@admin:example.org',
  state_key: '',
  origin_server_ts: 1_700_000_001_000,
  depth: 10,
  prev_events: [id(8)],
  auth_events: [id(2), id(3)],
  content: {
    ban: 50,
    kick: 50,
    redact: 50,
    invite: 0,
    events_default: 0,
    state_default: 50,
    users_default: 0,
    events: { 'm.room.name': 50, 'm.room.power_levels': 100, 'm.room.history_visibility': 100, 'm.room.tombstone': 100 },
    users: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`@user${i}:server${i % 7}.example`, (i % 3) * 50])),
    notifications: { room: 50 },
  },
};

const createEvent = {
  type: 'm.room.create',
  sender: '@admin:example.org',
  state_key: '',
  room_id: '!OGEhHVWSdvArJzumhm:matrix.org',
  origin_server_ts: 1_699_000_000_000,
  depth: 1,
  prev_events: [],
  auth_events: [],
  content: { room_version: '10', creator: '@admin:example.org', 'm.federate': true },
};

const signedMessage = hashAndSignEvent(message, ROOM_VERSION, 'example.org', key);
const signedMembership = hashAndSignEvent(membership, ROOM_VERSION, 'example.org', key);
const signedPowerLevels = hashAndSignEvent(powerLevels, ROOM_VERSION, 'example.org', key);
const signedCreate = hashAndSignEvent(createEvent, ROOM_VERSION, 'example.org', key);

/**
 * Calls per second of `f` on this thread's CPU time (user + system), after a
 * warm-up. CPU time rather than wall time keeps figures steady on a machine
 * shared with other work; everything measured here is synchronous.
 */
function rate(f: () => unknown, seconds = 1): number {
  const warmEnd = performance.now() + 200;
  while (performance.now() < warmEnd) f();
  let calls = 0;
  let batch = 16;
  const c0 = process.cpuUsage();
  let used = 0;
  while (used < seconds * 1e6) {
    for (let i = 0; i < batch; i++) f();
    calls += batch;
    const c = process.cpuUsage(c0);
    used = c.user + c.system;
    if (used < 50_000) batch *= 2;
  }
  return calls / (used / 1e6);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(12);
function row(name: string, perSecond: number, unit = '/s'): void {
  process.stdout.write(`${name.padEnd(62)}${fmt(perSecond)} ${unit}\n`);
}

const messageBytes = signedBytes(redact(signedMessage, ROOM_VERSION));
const messageSig = sign(null, messageBytes, key.privateKey);

process.stdout.write(`node ${process.version}, one core, rates per CPU-second\n\n-- Ed25519 --\n`);
row(
  'node:crypto sign (prepared bytes and key: the ceiling)',
  rate(() => sign(null, messageBytes, key.privateKey)),
);
row(
  'signJsonWithKey (redacted message event)',
  rate(() => signJsonWithKey(redact(message, ROOM_VERSION), 'example.org', key)),
);
row(
  'hashAndSignEvent (message event)',
  rate(() => hashAndSignEvent(message, ROOM_VERSION, 'example.org', key)),
);
row(
  'hashAndSignEvent (membership event, big content)',
  rate(() => hashAndSignEvent(membership, ROOM_VERSION, 'example.org', key)),
);
row(
  'node:crypto verify (prepared bytes and key: the ceiling)',
  rate(() => verify(null, messageBytes, pubKeyObject, messageSig)),
);
row(
  'verifyEventSignature (message event, KeyObject)',
  rate(() => verifyEventSignature(signedMessage, ROOM_VERSION, 'example.org', key.keyId, pubKeyObject)),
);
row(
  'verifyEventSignature (message event, key bytes, cached)',
  rate(() => verifyEventSignature(signedMessage, ROOM_VERSION, 'example.org', key.keyId, key.publicKey)),
);
row(
  'verifyEventSignature (membership event, KeyObject)',
  rate(() => verifyEventSignature(signedMembership, ROOM_VERSION, 'example.org', key.keyId, pubKeyObject)),
);
const signedObj = signJsonWithKey({ server_name: 'example.org', verify_keys: { [key.keyId]: { key: 'x'.repeat(43) } }, valid_until_ts: 1 }, 'example.org', key);
row(
  'verifyJson (server key response, key bytes)',
  rate(() => verifyJson(signedObj, 'example.org', key.keyId, key.publicKey)),
);

process.stdout.write('\n-- hashes and ids --\n');
row(
  'contentHash (message event)',
  rate(() => contentHash(signedMessage)),
);
row(
  'contentHash (membership event, big content)',
  rate(() => contentHash(signedMembership)),
);
row(
  'eventId v10 (message event)',
  rate(() => eventId(signedMessage, ROOM_VERSION)),
);
row(
  'eventId v10 (membership event, big content)',
  rate(() => eventId(signedMembership, ROOM_VERSION)),
);
row(
  'redact (membership event)',
  rate(() => redact(signedMembership, ROOM_VERSION)),
);

process.stdout.write('\n-- canonical JSON --\n');
// A realistic mix: mostly messages, some memberships, an occasional power levels / create.
const mix = [...Array<object>(10).fill(signedMessage), ...Array<object>(4).fill(signedMembership), signedPowerLevels, signedCreate];
const mixBytes = mix.reduce<number>((n, e) => n + Buffer.byteLength(canonicalJson(e)), 0);
const mixRate = rate(() => {
  for (const e of mix) canonicalJson(e);
});
row(`canonicalJson, event mix (${mix.length} events, ${mixBytes} bytes)`, (mixRate * mixBytes) / 1e6, 'MB/s');
row('canonicalJson, event mix', mixRate * mix.length, 'events/s');
const mixJsonRate = rate(() => {
  for (const e of mix) JSON.stringify(e);
});
row('JSON.stringify, same mix (for comparison, unsorted)', (mixJsonRate * mixBytes) / 1e6, 'MB/s');
const texts = mix.map((e) => JSON.stringify(e));
const parseRate = rate(() => {
  for (const t of texts) parseStrictJson(t);
});
row('parseStrictJson, same mix', (parseRate * mixBytes) / 1e6, 'MB/s');
const plainParseRate = rate(() => {
  for (const t of texts) JSON.parse(t);
});
row('JSON.parse, same mix (for comparison)', (plainParseRate * mixBytes) / 1e6, 'MB/s');
