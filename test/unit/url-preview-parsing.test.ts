/**
 * The pure parts of URL previews: the tolerant HTML scanner and OpenGraph
 * extraction, character sets, and url_preview_url_blacklist rules (the IP
 * ranges are in outbound-ip-ranges.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { HomeserverConfig } from '../../src/config/types.js';
import { decodeEntities, decodeHtml, openGraph, scanHtml } from '../../src/services/media/html-meta.js';
import { DEFAULT_MAX_SPIDER_SIZE, previewConfig, urlBlocked } from '../../src/services/media/preview-config.js';

describe('HTML scanning', () => {
  it('decodes character references, leaving unknown ones as written', () => {
    expect(decodeEntities('a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#x27; &eacute; &nosuch; &#0;')).toBe('a & b <c> "d" \'e\' &eacute; &nosuch; \ufffd');
  });

  it('reads attributes quoted any way, with > inside quotes, case-insensitively', () => {
    const f = scanHtml(`<META Property='og:title' CONTENT="a > b"><meta property=og:type content=website/><meta name="x" content='it"s'>`);
    expect(f.metas).toEqual([
      { property: 'og:title', content: 'a > b' },
      { property: 'og:type', content: 'website/' },
      { name: 'x', content: 'it"s' },
    ]);
  });

  it('skips comments, scripts and styles; takes the first title and image', () => {
    const f = scanHtml(`<!-- <title>no</title> --><script>document.write('<img src="no.png">')</script>
      <style>img{}</style><title>Yes &amp; yes</title><title>Second</title><img src="a.png"><img src="b.png">
      <link rel="image_src icon" href="/src.png">`);
    expect(f.title).toBe('Yes & yes');
    expect(f.firstImg).toBe('a.png');
    expect(f.imageSrc).toBe('/src.png');
  });

  it('survives broken markup: unclosed tags, stray <, a truncated document', () => {
    expect(() => scanHtml('<html><head><title>Open')).not.toThrow();
    expect(scanHtml('<html><head><title>Open').title).toBe('Open');
    expect(scanHtml('a < b <<< <meta property="og:title" content="ok"').metas).toEqual([]);
    expect(scanHtml('1 < 2 <meta property="og:title" content="ok">').metas).toEqual([{ property: 'og:title', content: 'ok' }]);
    expect(scanHtml('<!-- never closed <meta property="og:title" content="x">').metas).toEqual([]);
  });

  it('openGraph: og:* first, then fallbacks; image URLs resolved against the page', () => {
    const base = new URL('https://example.org/blog/post.html');
    expect(
      openGraph('<meta property="og:title" content="OG"><meta property="og:image" content="../img/a.png"><title>T</title><meta name="description" content="D">', base),
    ).toEqual({ 'og:title': 'OG', 'og:image': 'https://example.org/img/a.png', 'og:description': 'D' });
    expect(openGraph('<title>\n  Spaced\n   out </title><img src="//cdn.example.org/x.png">', base)).toEqual({
      'og:title': 'Spaced out',
      'og:image': 'https://cdn.example.org/x.png',
    });
    expect(openGraph('<meta name="twitter:title" content="TT"><meta name="twitter:description" content="TD">', base)).toEqual({ 'og:title': 'TT', 'og:description': 'TD' });
    // Only http(s) images.
    expect(openGraph('<meta property="og:image" content="data:image/png;base64,AAAA">', base)).toEqual({});
    // The first value of a repeated property wins.
    expect(openGraph('<meta property="og:title" content="first"><meta property="og:title" content="second">', base)['og:title']).toBe('first');
  });

  it('openGraph: long descriptions are cut to 500 characters at a word', () => {
    const long = `${'word '.repeat(200)}end`;
    const d = openGraph(`<meta property="og:description" content="${long}">`, new URL('http://x.example/'))['og:description']!;
    expect(d.length).toBeLessThanOrEqual(501);
    expect(d.endsWith('word…')).toBe(true);
  });

  it('decodes the charset of the header, a <meta>, or UTF-8; windows-1252 properly', () => {
    expect(decodeHtml('text/html; charset=iso-8859-1', Buffer.from([0x63, 0x61, 0x66, 0xe9]))).toBe('café');
    expect(decodeHtml('text/html', Buffer.from('<meta charset="windows-1252">\x80', 'latin1'))).toBe('<meta charset="windows-1252">€');
    expect(decodeHtml('text/html; charset=latin1', Buffer.from([0x93, 0x94]))).toBe('\u201c\u201d');
    expect(decodeHtml(null, Buffer.from('naïve'))).toBe('naïve');
    expect(decodeHtml('text/html; charset=no-such-charset', Buffer.from('naïve'))).toBe('naïve');
  });
});

describe('preview settings', () => {
  const cfg = (raw: Record<string, unknown>) => ({ raw, url_preview_ip_range_blacklist: ['127.0.0.0/8'], url_preview_ip_range_whitelist: [] }) as unknown as HomeserverConfig;

  it('reads max_spider_size (default 10M) and url_preview_accept_language', () => {
    expect(previewConfig(cfg({})).maxSpiderSize).toBe(DEFAULT_MAX_SPIDER_SIZE);
    expect(previewConfig(cfg({ max_spider_size: '1M' })).maxSpiderSize).toBe(1024 * 1024);
    expect(previewConfig(cfg({ max_spider_size: 5000 })).maxSpiderSize).toBe(5000);
    expect(previewConfig(cfg({ url_preview_accept_language: ['en-UK', 'en-US;q=0.9', '*;q=0.5'] })).acceptLanguage).toBe('en-UK, en-US;q=0.9, *;q=0.5');
  });

  it('refuses bad values, naming the key', () => {
    expect(() => previewConfig(cfg({ max_spider_size: 'huge' }))).toThrow(/max_spider_size/);
    expect(() => previewConfig(cfg({ url_preview_accept_language: 'en' }))).toThrow(/url_preview_accept_language/);
    expect(() => previewConfig(cfg({ url_preview_url_blacklist: [{ colour: 'red' }] }))).toThrow(/url_preview_url_blacklist\[0\]/);
    expect(() => previewConfig(cfg({ url_preview_url_blacklist: [{ path: '^(' }] }))).toThrow(/not a valid regular expression/);
    expect(() => previewConfig(cfg({ url_preview_url_blacklist: {} }))).toThrow(/url_preview_url_blacklist/);
  });

  it('url_preview_url_blacklist: globs match whole components, case-insensitively; ^ patterns are regular expressions; every component of an entry must match', () => {
    // Synapse's documented example entries.
    const rules = previewConfig(
      cfg({
        url_preview_url_blacklist: [
          { username: '*' },
          { netloc: 'google.com' },
          { netloc: '*.google.com' },
          { scheme: 'http', netloc: 'insecure.example' },
          { netloc: '^[^.]+$' },
          { netloc: 'www.acme.com', path: '/foo' },
        ],
      }),
    ).urlRules;
    const blocked = (u: string) => urlBlocked(rules, new URL(u));
    expect(blocked('https://user@example.org/')).toBe(true);
    expect(blocked('https://google.com/search')).toBe(true);
    expect(blocked('https://MAPS.Google.com/')).toBe(true);
    expect(blocked('https://notgoogle.com/')).toBe(false);
    expect(blocked('http://insecure.example/')).toBe(true);
    expect(blocked('https://insecure.example/')).toBe(false);
    expect(blocked('http://intranet/')).toBe(true);
    expect(blocked('https://www.acme.com/foo')).toBe(true);
    expect(blocked('https://www.acme.com/foobar')).toBe(false);
    expect(blocked('https://matrix.org/')).toBe(false);
  });
});
