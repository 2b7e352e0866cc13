/**
 * Access and refresh tokens in Synapse's shape — `syt_<localpart b64>_<random>_<crc>`
 * (`syr_` for refresh tokens) — so admin tools that sniff the prefix work.
 * Only a SHA-256 of a token is stored; the token itself exists in the
 * response that hands it out and in the client.
 */
import { createHash, randomInt } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function randomAlnum(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(s: string): number {
  let c = 0xffffffff;
  for (const b of Buffer.from(s, 'utf8')) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function base62(n: number, width: number): string {
  let s = '';
  do {
    s = BASE62[n % 62] + s;
    n = Math.floor(n / 62);
  } while (n > 0);
  return s.padStart(width, '0');
}

function makeToken(prefix: 'syt' | 'syr', localpart: string): string {
  const b64 = Buffer.from(localpart, 'utf8').toString('base64url');
  const base = `${prefix}_${b64}_${randomAlnum(20)}`;
  return `${base}_${base62(crc32(base), 6)}`;
}

export const newAccessToken = (localpart: string) => makeToken('syt', localpart);
export const newRefreshToken = (localpart: string) => makeToken('syr', localpart);

/** What the database keeps of a token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

/** A device id as Synapse makes them: ten upper-case letters. */
export function newDeviceId(): string {
  let s = '';
  for (let i = 0; i < 10; i++) s += String.fromCharCode(65 + randomInt(26));
  return s;
}
