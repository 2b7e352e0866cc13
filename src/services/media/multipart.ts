/**
 * `multipart/mixed` (RFC 2046 §5.1) as the federation media endpoints use
 * it: exactly two parts, JSON metadata (`{}` today) then the media, which
 * is either the bytes (with Content-Type and Content-Disposition) or a
 * `Location` header naming where to fetch them.
 *
 * Writing: `multipartFraming` gives the bytes around the media, so the
 * file itself can be streamed between them. Reading: `parseMultipart` over
 * a body already received whole (and bounded by the caller).
 */
import { randomBytes } from 'node:crypto';

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

export interface MultipartPart {
  /** Header names lower-cased; a repeated header keeps its first value. */
  headers: Record<string, string>;
  body: Buffer;
}

/** A fresh boundary: 32 hex digits, which no header or JSON we write can contain by chance. */
export function newBoundary(): string {
  return randomBytes(16).toString('hex');
}

function headerBlock(headers: Readonly<Record<string, string>>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

/**
 * The bytes before and after the media part's body: the JSON metadata part,
 * the media part's headers, and the closing delimiter. The whole body is
 * `head + media bytes + tail` (or `head + tail` for a `Location` part).
 */
export function multipartFraming(boundary: string, metadata: unknown, partHeaders: Readonly<Record<string, string>>): { head: Buffer; tail: Buffer } {
  const head = `--${boundary}\r\n${headerBlock({ 'Content-Type': 'application/json' })}\r\n${JSON.stringify(metadata)}\r\n` + `--${boundary}\r\n${headerBlock(partHeaders)}\r\n`;
  return { head: Buffer.from(head, 'utf8'), tail: Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8') };
}

/** The `boundary` parameter of a `multipart/mixed` Content-Type; undefined when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const [type, ...params] = contentType.split(';');
  if (type?.trim().toLowerCase() !== 'multipart/mixed') return undefined;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'boundary') continue;
    let v = p.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    // RFC 2046: 1 to 70 characters.
    return v.length >= 1 && v.length <= 70 ? v : undefined;
  }
  return undefined;
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError('a part header without a name');
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!(name in headers)) headers[name] = line.slice(colon + 1).trim();
  }
  return headers;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
/** Headers of a part longer than this are refused (ours are a few hundred bytes). */
const MAX_PART_HEADERS = 16 * 1024;

/** The parts of a multipart body delimited by `boundary`; MultipartError when it is not well formed. */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const first = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let pos: number;
  if (body.subarray(0, first.length).equals(first)) pos = first.length;
  else {
    // A preamble before the first delimiter is allowed, and ignored.
    const i = body.indexOf(delimiter);
    if (i < 0) throw new MultipartError('no boundary in the body');
    pos = i + delimiter.length;
  }
  const parts: MultipartPart[] = [];
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // the close delimiter
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++; // transport padding
    if (!body.subarray(pos, pos + 2).equals(CRLF)) throw new MultipartError('a delimiter not followed by a line break');
    pos += 2;
    const next = body.indexOf(delimiter, pos);
    if (next < 0) throw new MultipartError('the body ends inside a part');
    const part = body.subarray(pos, next);
    let headers: Record<string, string> = {};
    let content: Buffer;
    if (part.subarray(0, 2).equals(CRLF)) content = part.subarray(2);
    else {
      const end = part.indexOf(HEADER_END);
      if (end < 0 || end > MAX_PART_HEADERS) throw new MultipartError('a part without the end of its headers');
      headers = parseHeaders(part.subarray(0, end).toString('latin1'));
      content = part.subarray(end + HEADER_END.length);
    }
    parts.push({ headers, body: content });
    pos = next + delimiter.length;
  }
}
