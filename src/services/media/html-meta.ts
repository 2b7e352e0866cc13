/**
 * A small, tolerant HTML scanner for URL previews: it reads the tags a
 * preview needs (<meta>, <title>, <img>, <link rel=image_src>) from any
 * markup, however broken, without building a tree. Comments, <script> and
 * <style> bodies are skipped; attribute values and titles have their
 * character references decoded.
 *
 * openGraph() turns what was found into the preview object: the page's
 * og:* properties, with <title>, the description meta tags and the first
 * image as fallbacks.
 */

export interface HtmlFacts {
  /** <meta> tags' attributes (lower-cased names), in document order. */
  metas: Record<string, string>[];
  title?: string;
  /** <link rel="image_src" href> */
  imageSrc?: string;
  /** The first <img src>. */
  firstImg?: string;
}

const NAMED: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  ndash: '\u2013',
  mdash: '\u2014',
  hellip: '\u2026',
  lsquo: '\u2018',
  rsquo: '\u2019',
  ldquo: '\u201c',
  rdquo: '\u201d',
  laquo: '\u00ab',
  raquo: '\u00bb',
  copy: '\u00a9',
  reg: '\u00ae',
  trade: '\u2122',
  middot: '\u00b7',
  bull: '\u2022',
};

/** Decodes numeric and common named character references; anything unknown is left as written. */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#\d{1,7}|[A-Za-z][A-Za-z0-9]{1,31});?/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!Number.isFinite(code) || code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return '\ufffd';
      return String.fromCodePoint(code);
    }
    return NAMED[ref.toLowerCase()] ?? whole;
  });
}

/** Parses the attributes of a start tag's inside (after its name, up to but not including '>'). */
function parseAttributes(s: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    const name = m[1]!.toLowerCase();
    if (name in attrs) continue;
    attrs[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/** Where the tag that starts at `from` (just after its name) ends: the first '>' outside quoted attribute values. */
function tagEnd(html: string, from: number): number {
  let quote: string | null = null;
  let lastSignificant = '';
  for (let i = from; i < html.length; i++) {
    const c = html[i]!;
    if (quote) {
      if (c === quote) {
        quote = null;
        lastSignificant = c;
      }
    } else if ((c === '"' || c === "'") && lastSignificant === '=') {
      // Only a quote that opens an attribute value counts (name="...").
      quote = c;
    } else if (c === '>') {
      return i;
    } else if (!/\s/.test(c)) {
      lastSignificant = c;
    }
  }
  return -1;
}

const RAW_TEXT = new Set(['script', 'style', 'title', 'textarea', 'noscript', 'template']);

export function scanHtml(html: string): HtmlFacts {
  const facts: HtmlFacts = { metas: [] };
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt < 0) break;
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    if (html[lt + 1] === '!' || html[lt + 1] === '?' || html[lt + 1] === '/') {
      const end = html.indexOf('>', lt + 1);
      i = end < 0 ? html.length : end + 1;
      continue;
    }
    const nameMatch = /^[A-Za-z][^\s/>]*/.exec(html.slice(lt + 1, lt + 64));
    if (!nameMatch) {
      i = lt + 1;
      continue;
    }
    const name = nameMatch[0].toLowerCase();
    const attrStart = lt + 1 + nameMatch[0].length;
    const end = tagEnd(html, attrStart);
    if (end < 0) break;
    const attrs = () => parseAttributes(html.slice(attrStart, end));
    i = end + 1;
    if (name === 'meta') {
      facts.metas.push(attrs());
    } else if (name === 'img') {
      if (facts.firstImg === undefined) {
        const src = attrs()['src'];
        if (src) facts.firstImg = src;
      }
    } else if (name === 'link') {
      const a = attrs();
      if (facts.imageSrc === undefined && a['href'] && (a['rel'] ?? '').toLowerCase().split(/\s+/).includes('image_src')) facts.imageSrc = a['href'];
    }
    // As browsers do, a raw-text element runs to its end tag even when written <script/>.
    if (RAW_TEXT.has(name)) {
      const close = new RegExp(`</${name}[\\s/>]`, 'i');
      const rest = html.slice(i);
      const m = close.exec(rest);
      const text = m ? rest.slice(0, m.index) : rest;
      if (name === 'title' && facts.title === undefined) facts.title = decodeEntities(text);
      i = m ? i + m.index : html.length;
    }
  }
  return facts;
}

/** Whitespace runs become one space; the ends are trimmed. */
function squash(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

const MAX_DESCRIPTION = 500;
const MAX_VALUE = 2000;
const MAX_KEYS = 64;

/**
 * The OpenGraph object of a page. Relative image URLs are resolved against
 * `base` (the page's final URL); og:image is left as an http(s) URL for the
 * caller to fetch and replace (or drop).
 */
export function openGraph(html: string, base: URL): Record<string, string> {
  const facts = scanHtml(html);
  const og: Record<string, string> = {};
  let count = 0;
  for (const m of facts.metas) {
    const key = (m['property'] ?? m['name'] ?? '').toLowerCase();
    const content = m['content'];
    if (!key.startsWith('og:') || content === undefined || key in og) continue;
    if (++count > MAX_KEYS) break;
    og[key] = truncate(squash(content), MAX_VALUE);
  }
  const metaNamed = (...names: string[]) => {
    for (const n of names) {
      const hit = facts.metas.find((m) => (m['name'] ?? m['property'] ?? '').toLowerCase() === n && m['content']);
      if (hit) return squash(hit['content']!);
    }
    return undefined;
  };
  if (!og['og:title']) {
    const title = facts.title !== undefined ? squash(facts.title) : metaNamed('twitter:title');
    if (title) og['og:title'] = truncate(title, MAX_VALUE);
    else delete og['og:title'];
  }
  if (!og['og:description']) {
    const description = metaNamed('description', 'twitter:description');
    if (description) og['og:description'] = description;
    else delete og['og:description'];
  }
  if (og['og:description']) og['og:description'] = truncate(og['og:description'], MAX_DESCRIPTION);

  const image = og['og:image'] || metaNamed('twitter:image', 'twitter:image:src') || facts.imageSrc || facts.firstImg;
  delete og['og:image'];
  if (image) {
    try {
      const u = new URL(squash(image), base);
      if (u.protocol === 'http:' || u.protocol === 'https:') og['og:image'] = u.href;
    } catch {
      // Not a URL: no image.
    }
  }
  return og;
}

/** The character set of an HTML document: the Content-Type's, else a <meta> in its first bytes, else UTF-8. */
export function htmlCharset(contentType: string | null, body: Buffer): string {
  const fromHeader = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '');
  if (fromHeader) return fromHeader[1]!.toLowerCase();
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) return 'utf-8';
  const head = body.subarray(0, 2048).toString('latin1');
  const meta = /<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)/i.exec(head);
  return meta ? meta[1]!.toLowerCase() : 'utf-8';
}

/** windows-1252's 0x80–0x9F (where it differs from ISO-8859-1); 0 marks the five unassigned bytes. */
const CP1252_HIGH = [
  0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0, 0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
  0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
];

/** windows-1252, decoded here: Node 20's TextDecoder treats it (and its aliases latin1, ascii) as ISO-8859-1. */
function decodeCp1252(body: Buffer): string {
  let out = '';
  for (let i = 0; i < body.length; i += 8192) {
    const codes = Array.from(body.subarray(i, i + 8192), (b) => (b >= 0x80 && b <= 0x9f ? CP1252_HIGH[b - 0x80] || b : b));
    out += String.fromCharCode(...codes);
  }
  return out;
}

/** Decodes an HTML body in its character set (UTF-8 when the named one is unknown). */
export function decodeHtml(contentType: string | null, body: Buffer): string {
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(htmlCharset(contentType, body));
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  return decoder.encoding === 'windows-1252' ? decodeCp1252(body) : decoder.decode(body);
}
