import { describe, expect, it } from 'vitest';
import { matchesGlob, encodeQuery } from '../../src/services/federation/federation-client.js';
import {
  parseServerName,
  parseWellKnownServer,
  WELL_KNOWN_DEFAULT_CACHE_MS,
  WELL_KNOWN_MAX_CACHE_MS,
  WELL_KNOWN_MIN_CACHE_MS,
  wellKnownCacheMs,
} from '../../src/services/federation/server-name.js';
import { pickSrv } from '../../src/services/federation/server-resolver.js';

describe('parseServerName', () => {
  it.each([
    ['example.com', { host: 'example.com', bareHost: 'example.com', ip: false }],
    ['example.com:8449', { host: 'example.com', bareHost: 'example.com', port: 8449, ip: false }],
    ['1.2.3.4', { host: '1.2.3.4', bareHost: '1.2.3.4', ip: true }],
    ['1.2.3.4:80', { host: '1.2.3.4', bareHost: '1.2.3.4', port: 80, ip: true }],
    ['[1234:5678::abcd]', { host: '[1234:5678::abcd]', bareHost: '1234:5678::abcd', ip: true }],
    ['[1234:5678::abcd]:5678', { host: '[1234:5678::abcd]', bareHost: '1234:5678::abcd', port: 5678, ip: true }],
  ])('parses %s', (name, want) => {
    expect(parseServerName(name)).toEqual(want);
  });

  it.each(['', 'example.com:', 'example.com:0', 'example.com:65536', 'example.com:8x', '1234:5678::abcd', '[::1', '[not-ip]', 'exa mple.com', '-x.com', 'a/b'])(
    'refuses %j',
    (name) => {
      expect(parseServerName(name)).toBeUndefined();
    },
  );
});

describe('parseWellKnownServer', () => {
  it('reads m.server', () => {
    expect(parseWellKnownServer({ 'm.server': 'delegated.example.com:443' })).toMatchObject({ bareHost: 'delegated.example.com', port: 443 });
  });
  it.each([[null], [[]], ['x'], [{}], [{ 'm.server': 5 }], [{ 'm.server': 'bad name:' }]])('refuses %j', (body) => {
    expect(parseWellKnownServer(body)).toBeUndefined();
  });
});

describe('wellKnownCacheMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('defaults to 24 h', () => {
    expect(wellKnownCacheMs({}, now)).toBe(WELL_KNOWN_DEFAULT_CACHE_MS);
  });
  it('takes max-age', () => {
    expect(wellKnownCacheMs({ cacheControl: 'public, max-age=7200' }, now)).toBe(7200_000);
  });
  it('caps at 48 h and floors at 5 min', () => {
    expect(wellKnownCacheMs({ cacheControl: 'max-age=9999999' }, now)).toBe(WELL_KNOWN_MAX_CACHE_MS);
    expect(wellKnownCacheMs({ cacheControl: 'max-age=1' }, now)).toBe(WELL_KNOWN_MIN_CACHE_MS);
    expect(wellKnownCacheMs({ cacheControl: 'no-store' }, now)).toBe(WELL_KNOWN_MIN_CACHE_MS);
  });
  it('uses Expires against Date when there is no max-age', () => {
    expect(wellKnownCacheMs({ expires: 'Thu, 01 Jan 2026 03:00:00 GMT', date: 'Thu, 01 Jan 2026 01:00:00 GMT' }, now)).toBe(2 * 3600_000);
    expect(wellKnownCacheMs({ expires: 'Thu, 01 Jan 2026 03:00:00 GMT' }, now)).toBe(3 * 3600_000);
    expect(wellKnownCacheMs({ expires: '0' }, now)).toBe(WELL_KNOWN_MIN_CACHE_MS);
  });
  it('prefers max-age over Expires', () => {
    expect(wellKnownCacheMs({ cacheControl: 'max-age=3600', expires: 'Thu, 01 Jan 2026 10:00:00 GMT' }, now)).toBe(3600_000);
  });
});

describe('pickSrv', () => {
  const recs = [
    { name: 'b.example.com', port: 2, priority: 20, weight: 0 },
    { name: 'a.example.com', port: 1, priority: 10, weight: 10 },
    { name: 'c.example.com', port: 3, priority: 10, weight: 30 },
  ];
  it('takes the lowest priority, weighted among equals', () => {
    expect(pickSrv(recs, () => 0)).toMatchObject({ name: 'a.example.com' });
    expect(pickSrv(recs, () => 0.5)).toMatchObject({ name: 'c.example.com' });
  });
  it('treats "." as no service', () => {
    expect(pickSrv([{ name: '.', port: 0, priority: 0, weight: 0 }])).toBeUndefined();
    expect(pickSrv([])).toBeUndefined();
  });
});

describe('helpers', () => {
  it('matchesGlob', () => {
    expect(matchesGlob('*.example.com', 'a.example.com')).toBe(true);
    expect(matchesGlob('*.example.com', 'example.com')).toBe(false);
    expect(matchesGlob('ex.com', 'exxcom')).toBe(false);
  });
  it('encodeQuery', () => {
    expect(encodeQuery({ a: 'x y', b: [1, 2], c: undefined, d: true })).toBe('a=x+y&b=1&b=2&d=true');
    expect(encodeQuery(undefined)).toBe('');
  });
});
