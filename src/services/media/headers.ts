/**
 * The headers media is served with: Content-Type as uploaded (text/* with a
 * charset), Content-Disposition `inline` only for the spec's list of types
 * that cannot run script ("Serving inline content"), `attachment` for
 * everything else, and the sandboxing headers the spec recommends.
 */

/** The spec's (and Synapse's) content types that may be served `inline`. */
export const INLINE_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

export const MEDIA_CSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

/** Headers on every media response, errors included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': MEDIA_CSP,
  'x-content-type-options': 'nosniff',
  'cross-origin-resource-policy': 'cross-origin',
  'x-robots-tag': 'noindex, nofollow, noarchive, noimageindex',
};

/** Media does not change once uploaded: Synapse lets clients and proxies keep it for a day. */
export const CACHE_CONTROL = 'public,max-age=86400,s-maxage=86400';

/** Anything a header may carry: visible ASCII, spaces and tabs (a stored value from elsewhere may not be). */
const HEADER_SAFE = /^[\t\x20-\x7e]*$/;
/** type/subtype with optional parameters, loosely: enough to refuse garbage. */
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:\s*;.*)?$/;

/** The bare `type/subtype`, lower-cased, without parameters. */
export function essence(mediaType: string): string {
  return (mediaType.split(';', 1)[0] ?? '').trim().toLowerCase();
}

/** The Content-Type to serve: as stored, `application/octet-stream` when missing or unusable, text/* with a UTF-8 charset. */
export function servedContentType(stored: string | null): string {
  if (stored === null || !HEADER_SAFE.test(stored) || !MEDIA_TYPE.test(stored.trim())) return 'application/octet-stream';
  const type = stored.trim();
  if (essence(type).startsWith('text/') && !/;\s*charset\s*=/i.test(type)) return `${type}; charset=UTF-8`;
  return type;
}

/** RFC 7230 token characters: a file name made only of these needs no quoting. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Printable ASCII without the two characters a quoted-string must escape. */
const QUOTABLE = /^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/;

/** RFC 5987 `value-chars`: percent-encodes everything outside attr-char. */
function encodeExtValue(s: string): string {
  return encodeURIComponent(s).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The `filename` parameter: bare when a token, quoted when plain ASCII, else RFC 6266's `filename*=utf-8''…`. */
export function filenameParam(name: string): string {
  if (TOKEN.test(name)) return `filename=${name}`;
  if (QUOTABLE.test(name)) return `filename="${name}"`;
  return `filename*=utf-8''${encodeExtValue(name)}`;
}

/** Content-Disposition for a download: inline only for the safe types, with the file name when there is one. */
export function contentDisposition(servedType: string, fileName: string | null): string {
  const kind = INLINE_CONTENT_TYPES.has(essence(servedType)) ? 'inline' : 'attachment';
  return fileName ? `${kind}; ${filenameParam(fileName)}` : kind;
}

/**
 * The file name a Content-Disposition header gives: `filename*` (RFC 6266 /
 * 5987, UTF-8 only) before `filename` (a token or a quoted string); null
 * when there is none or it cannot be read.
 */
export function filenameFromDisposition(header: string | undefined): string | null {
  if (header === undefined) return null;
  const params = new Map<string, string>();
  // Parameters after the disposition type: name=token or name="quoted \"string\"".
  const re = /;\s*([A-Za-z0-9!#$&+.^_`|~*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (let m = re.exec(header); m !== null; m = re.exec(header)) {
    const name = m[1]!.toLowerCase();
    if (!params.has(name)) params.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? ''));
  }
  const ext = params.get('filename*');
  if (ext !== undefined) {
    const m = /^utf-8'[^']*'(.+)$/i.exec(ext);
    if (m) {
      try {
        const name = decodeURIComponent(m[1]!);
        if (name !== '' && !name.includes('\u0000')) return name;
      } catch {
        // Not percent-encoded right: fall back to `filename`.
      }
    }
  }
  const plain = params.get('filename');
  return plain !== undefined && plain !== '' && !plain.includes('\u0000') ? plain : null;
}
