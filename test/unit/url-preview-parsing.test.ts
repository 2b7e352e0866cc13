/**
 * The pure parts of URL previews: IP ranges (the blacklist's matching, in
 * every spelling of an address), the tolerant HTML scanner and OpenGraph
 * extraction, character sets, and url_preview_url_blacklist rules.
 */
import { describe, expect, it } from 'vitest';
import type { HomeserverConfig } from '../../src/config/types.js';
import { decodeEntities, decodeHtml, openGraph, scanHtml } from '../../src/services/media/html-meta.js';
import { AddressPolicy, IpRangeSet, parseIp } from '../../src/services/media/ip-ranges.js';
import { DEFAULT_MAX_SPIDER_SIZE, previewConfig, urlBlocked } from '../../src/services/media/preview-config.js';

describe('IP ranges', () => {
  it('parses IPv4, IPv6 (compressed, bracketed, with an IPv4 tail or a zone) and refuses host names', () => {
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, value: 0x0a010203n });
    expect(parseIp('::1')).toEqual({ family: 6, value: 1n });
    expect(parseIp('[2001:db8::1]')).toEqual({ family: 6, value: 0x20010db8000000000000000000000001n });
    expect(parseIp('::ffff:127.0.0.1')).toEqual({ family: 6, value: 0xffff7f000001n });
    expect(parseIp('fe80::1%eth0')?.family).toBe(6);
    for (const bad of ['localhost', '1.2.3', '256.1.1.1', '1::2::3', 'example.org', '']) expect(parseIp(bad), bad).toBeUndefined();
  });

  it('matches CIDR ranges and single addresses', () => {
    const set = new IpRangeSet(['127.0.0.0/8', '192.168.0.0/16', '10.0.0.1', 'fc00::/7', '::1/128']);
    for (const yes of ['127.0.0.1', '127.255.255.254', '192.168.4.4', '10.0.0.1', 'fd12::1', '::1']) expect(set.contains(yes), yes).toBe(true);
    for (const no of ['128.0.0.1', '192.169.0.1', '10.0.0.2', 'fe00::1', '::2', '8.8.8.8']) expect(set.contains(no), no).toBe(false);
  });

  it('checks an IPv4-mapped IPv6 address as the IPv4 address it carries', () => {
    const set = new IpRangeSet(['127.0.0.0/8']);
    expect(set.contains('::ffff:127.0.0.1')).toBe(true);
    expect(set.contains('::ffff:7f00:1')).toBe(true);
    expect(set.contains('::ffff:8.8.8.8')).toBe(false);
  });

  it('refuses entries that are not ranges, naming them', () => {
    expect(() => new IpRangeSet(['10.0.0.0/33'], 'url_preview_ip_range_blacklist')).toThrow(/url_preview_ip_range_blacklist: "10.0.0.0\/33"/);
    expect(() => new IpRangeSet(['example.org'])).toThrow(/not an IP address/);
    expect(() => new IpRangeSet(['::/129'])).toThrow();
  });

  it('the policy: blacklisted unless whitelisted; unspecified addresses always refused; non-IPs refused', () => {
    const p = new AddressPolicy(['127.0.0.0/8'], ['127.0.0.1']);
    expect(p.allows('127.0.0.1')).toBe(true);
    expect(p.allows('127.0.0.2')).toBe(false);
    expect(p.allows('93.184.216.34')).toBe(true);
    expect(p.allows('0.0.0.0')).toBe(false);
    expect(p.allows('::')).toBe(false);
    expect(p.allows('localhost')).toBe(false);
    expect(new AddressPolicy([], ['0.0.0.0/0']).allows('0.0.0.0')).toBe(false);
  });
});

describe('HTML scanning', () => {
  it('decodes character references, leaving unknown ones as written', () => {
    expect(decodeEntities('a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#x27; &eacute; &nosuch; &#0;')).toBe('a & b <c> "d" \'e\' &eacute; &nosuch; \ufffd');
  });

  it('reads attributes quoted any way, with > inside quotes, case-insensitively', () => {
    const f = scanHtml(`<META Property='og:title' CONTENT="a > b"><meta property=og:type content=website/><meta name="x" content='it"s'>`);
    expect(f.metas).toEqual([{ property: 'og:title', content: 'a > b' }, { property: 'og:type', content: 'website/' }, { name: 'x', content: 'it"s' }]);
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
  const cfg = (raw: Record<string, unknown>) =>
    ({ raw, url_preview_ip_range_blacklist: ['127.0.0.0/8'], url_preview_ip_range_whitelist: [] }) as unknown as HomeserverConfig;

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
          { scheme: 'http' , netloc: 'insecure.example' },
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
