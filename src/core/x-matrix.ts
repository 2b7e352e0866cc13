/**
 * Request authentication between homeservers (server-server API,
 * "Request Authentication"): the JSON object a request's signature covers,
 * signing it, the `Authorization: X-Matrix …` header that carries the
 * signature, parsing that header and checking its signature.
 *
 * The signed object is `{method, uri, origin, destination, content?}`
 * (plus `signatures` once signed): `uri` is the request target as sent,
 * path and query string, starting `/_matrix/`; `content` is the parsed
 * JSON body, present only when the request has one.
 *
 * Parsing follows the spec's grammar (RFC 9110 auth-params after the
 * `X-Matrix` scheme): comma-separated `name=value`, names case-insensitive,
 * values a token or a quoted string (backslash escapes undone); for older
 * senders, unquoted values may hold colons. Unknown params are ignored;
 * a missing `origin`, `key` or `sig` is an error. `destination` is optional
 * (older servers leave it out); when present it must be the receiver's name.
 */
import type { KeyObject } from 'node:crypto';
import { verify } from 'node:crypto';
import { Base64Error, decodeBase64 } from './base64.js';
import { publicKeyObject, signatureOf, signedBytes, type SigningKey } from './signing.js';

/** The object a federation request's signature covers. */
export interface SignedRequest {
  method: string;
  uri: string;
  origin: string;
  destination: string;
  content?: unknown;
}

/** A parsed X-Matrix Authorization header. */
export interface XMatrixAuth {
  origin: string;
  /** Absent when the sender left it out (older servers). */
  destination?: string;
  /** e.g. `ed25519:a_AbCd` */
  key: string;
  /** Unpadded base64 signature. */
  sig: string;
}

export class XMatrixParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XMatrixParseError';
  }
}

/** The signed request object (`content` only when there is a body). */
export function signedRequestObject(r: SignedRequest): Record<string, unknown> {
  const o: Record<string, unknown> = { method: r.method, uri: r.uri, origin: r.origin, destination: r.destination };
  if (r.content !== undefined) o['content'] = r.content;
  return o;
}

/**
 * The base64 signature of a request by `key`. Throws CanonicalJsonError
 * when the content is not canonical JSON.
 */
export function signRequest(r: SignedRequest, key: Pick<SigningKey, 'privateKey'>): string {
  return signatureOf(signedRequestObject(r), key.privateKey);
}

function quote(v: string): string {
  return `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** `X-Matrix origin="…",destination="…",key="…",sig="…"` (the Authorization header's value). */
export function formatXMatrix(a: XMatrixAuth): string {
  const parts = [`origin=${quote(a.origin)}`];
  if (a.destination !== undefined) parts.push(`destination=${quote(a.destination)}`);
  parts.push(`key=${quote(a.key)}`, `sig=${quote(a.sig)}`);
  return `X-Matrix ${parts.join(',')}`;
}

/** Signs a request with our key and returns the Authorization header's value. */
export function xMatrixAuthorization(r: SignedRequest, key: Pick<SigningKey, 'keyId' | 'privateKey'>): string {
  return formatXMatrix({ origin: r.origin, destination: r.destination, key: key.keyId, sig: signRequest(r, key) });
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const OWS = /[ \t]/;

/**
 * Parses an Authorization header value with the X-Matrix scheme. Throws
 * XMatrixParseError for another scheme, a malformed parameter list, a
 * repeated parameter, or a missing origin, key or sig.
 */
export function parseXMatrix(header: string): XMatrixAuth {
  if (typeof header !== 'string') throw new XMatrixParseError('no Authorization header');
  const m = /^[ \t]*([^ \t]+)[ \t]+/.exec(header);
  if (!m || m[1]!.toLowerCase() !== 'x-matrix') throw new XMatrixParseError('not an X-Matrix Authorization header');
  const s = header;
  let i = m[0].length;
  const params = new Map<string, string>();
  const skipOws = () => {
    while (i < s.length && OWS.test(s[i]!)) i++;
  };
  while (i < s.length) {
    skipOws();
    if (s[i] === ',') {
      i++;
      continue;
    }
    if (i >= s.length) break;
    const start = i;
    while (i < s.length && TOKEN_CHAR.test(s[i]!)) i++;
    if (i === start) throw new XMatrixParseError(`unexpected character at ${i}`);
    const name = s.slice(start, i).toLowerCase();
    skipOws();
    if (s[i] !== '=') throw new XMatrixParseError(`parameter ${JSON.stringify(name)} has no value`);
    i++;
    skipOws();
    let value = '';
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const c = s[i]!;
        if (c === '\\') {
          if (i + 1 >= s.length) break;
          value += s[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          closed = true;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) throw new XMatrixParseError(`unterminated quoted value for ${JSON.stringify(name)}`);
    } else {
      const vs = i;
      // Leniently, anything up to a comma or white space: a token, and for older
      // senders colons and brackets (server names with ports) or base64 signatures.
      while (i < s.length && s[i] !== ',' && s[i] !== '"' && !OWS.test(s[i]!)) i++;
      value = s.slice(vs, i);
      if (value === '') throw new XMatrixParseError(`parameter ${JSON.stringify(name)} has an empty value`);
    }
    skipOws();
    if (i < s.length && s[i] !== ',') throw new XMatrixParseError(`expected "," after parameter ${JSON.stringify(name)}`);
    if (params.has(name)) throw new XMatrixParseError(`parameter ${JSON.stringify(name)} given twice`);
    params.set(name, value);
  }
  const origin = params.get('origin');
  const key = params.get('key');
  const sig = params.get('sig');
  if (origin === undefined || origin === '') throw new XMatrixParseError('X-Matrix header without origin');
  if (key === undefined || key === '') throw new XMatrixParseError('X-Matrix header without key');
  if (sig === undefined || sig === '') throw new XMatrixParseError('X-Matrix header without sig');
  const out: XMatrixAuth = { origin, key, sig };
  const destination = params.get('destination');
  if (destination !== undefined) out.destination = destination;
  return out;
}

export interface VerifyRequestInput {
  auth: XMatrixAuth;
  method: string;
  /** Path and query string as received. */
  uri: string;
  /** The parsed JSON body, undefined when there is none. */
  content?: unknown;
  /** Our server name (the destination the signature must cover). */
  ourName: string;
  /** The origin's public key for `auth.key`: 32 raw bytes or a KeyObject. */
  publicKey: Uint8Array | KeyObject;
}

export type VerifyRequestResult = { ok: true } | { ok: false; reason: string };

/**
 * Whether the header's signature is the origin's over this request to us.
 * Never throws: a destination naming another server, a non-ed25519 key
 * id, bad base64, a bad key or content that is not canonical JSON all
 * answer `ok: false` with a reason.
 */
export function verifyRequest(v: VerifyRequestInput): VerifyRequestResult {
  const { auth } = v;
  if (auth.destination !== undefined && auth.destination !== v.ourName) {
    return { ok: false, reason: `the request is for ${auth.destination}, not ${v.ourName}` };
  }
  if (!auth.key.startsWith('ed25519:') || auth.key.length === 8) return { ok: false, reason: `unsupported key ${auth.key}` };
  let sig: Uint8Array;
  try {
    sig = decodeBase64(auth.sig);
  } catch (err) {
    if (err instanceof Base64Error) return { ok: false, reason: 'the signature is not base64' };
    throw err;
  }
  if (sig.length !== 64) return { ok: false, reason: 'the signature is not 64 bytes' };
  try {
    const key = v.publicKey instanceof Uint8Array ? publicKeyObject(v.publicKey) : v.publicKey;
    const obj = signedRequestObject({ method: v.method, uri: v.uri, origin: auth.origin, destination: v.ourName, content: v.content });
    if (!verify(null, signedBytes(obj), key, sig)) return { ok: false, reason: 'the signature does not verify' };
  } catch (err) {
    return { ok: false, reason: `cannot verify: ${(err as Error).message}` };
  }
  return { ok: true };
}
