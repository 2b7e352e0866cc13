import { describe, expect, it } from 'vitest';
import { globMatches, hostOf, isIpLiteral, serverAllowedByAcl } from '../../src/core/server-acl.js';

/** The spec's example m.room.server_acl content. */
const SPEC_EXAMPLE = { allow_ip_literals: false, allow: ['*'], deny: ['*.evil.com', 'evil.com'] };

describe('serverAllowedByAcl with the spec example', () => {
  it.each([
    ['evil.com', false],
    ['evil.com:8448', false],
    ['evil.com:1234', false],
    ['sub.evil.com', false],
    ['a.b.evil.com:443', false],
    ['EVIL.com', false],
    ['Sub.Evil.COM', false],
    ['notevil.com', true],
    ['evil.com.example.org', true],
    ['good.example.org', true],
    ['good.example.org:8448', true],
    ['1.2.3.4', false],
    ['1.2.3.4:8448', false],
    ['[::1]', false],
    ['[::1]:8448', false],
    ['[2001:db8::1]:443', false],
  ])('%s → %s', (server, allowed) => {
    expect(serverAllowedByAcl(SPEC_EXAMPLE, server)).toBe(allowed);
  });
});

describe('serverAllowedByAcl rules', () => {
  it('no ACL event allows every server', () => {
    expect(serverAllowedByAcl(undefined, 'anything.example')).toBe(true);
    expect(serverAllowedByAcl(undefined, '1.2.3.4')).toBe(true);
  });

  it('a missing allow list allows no one, not even with an empty deny list', () => {
    expect(serverAllowedByAcl({}, 'example.org')).toBe(false);
    expect(serverAllowedByAcl({ deny: [] }, 'example.org')).toBe(false);
    expect(serverAllowedByAcl({ allow: [] }, 'example.org')).toBe(false);
  });

  it('deny wins over allow', () => {
    expect(serverAllowedByAcl({ allow: ['good.org'], deny: ['good.org'] }, 'good.org')).toBe(false);
    expect(serverAllowedByAcl({ allow: ['*'], deny: ['*'] }, 'good.org')).toBe(false);
  });

  it('only what allow names is allowed', () => {
    const acl = { allow: ['*.example.org', 'friend.net'] };
    expect(serverAllowedByAcl(acl, 'a.example.org')).toBe(true);
    expect(serverAllowedByAcl(acl, 'friend.net:8448')).toBe(true);
    expect(serverAllowedByAcl(acl, 'example.org')).toBe(false);
    expect(serverAllowedByAcl(acl, 'friend.network')).toBe(false);
    expect(serverAllowedByAcl(acl, 'stranger.net')).toBe(false);
  });

  it('allow_ip_literals defaults to true (missing or not a boolean)', () => {
    for (const content of [{ allow: ['*'] }, { allow: ['*'], allow_ip_literals: 'false' }, { allow: ['*'], allow_ip_literals: 0 }, { allow: ['*'], allow_ip_literals: null }]) {
      expect(serverAllowedByAcl(content, '1.2.3.4')).toBe(true);
      expect(serverAllowedByAcl(content, '[::1]:8448')).toBe(true);
    }
    expect(serverAllowedByAcl({ allow: ['*'], allow_ip_literals: true }, '10.0.0.1:8448')).toBe(true);
  });

  it('allow_ip_literals false denies IP literals even when allow names them', () => {
    expect(serverAllowedByAcl({ allow: ['1.2.3.4', '[::1]'], allow_ip_literals: false }, '1.2.3.4')).toBe(false);
    expect(serverAllowedByAcl({ allow: ['1.2.3.4', '[::1]'], allow_ip_literals: false }, '[::1]')).toBe(false);
    // ... but not names that only look numeric in part.
    expect(serverAllowedByAcl({ allow: ['*'], allow_ip_literals: false }, '1.2.3.4.example.org')).toBe(true);
    expect(serverAllowedByAcl({ allow: ['*'], allow_ip_literals: false }, '1.2.3')).toBe(true);
  });

  it('IP literals are matched by the globs like names (without the port)', () => {
    expect(serverAllowedByAcl({ allow: ['*'], deny: ['1.2.3.*'] }, '1.2.3.4:8448')).toBe(false);
    expect(serverAllowedByAcl({ allow: ['[::1]'] }, '[::1]:8448')).toBe(true);
  });

  it('lists that are not arrays count as empty; entries that are not strings are ignored', () => {
    expect(serverAllowedByAcl({ allow: '*' }, 'example.org')).toBe(false);
    expect(serverAllowedByAcl({ allow: ['*'], deny: 'example.org' }, 'example.org')).toBe(true);
    expect(serverAllowedByAcl({ allow: [1, null, {}, 'example.org'] }, 'example.org')).toBe(true);
    expect(serverAllowedByAcl({ allow: [1, null, {}] }, 'example.org')).toBe(false);
  });

  it('content that is not an object allows no one', () => {
    expect(serverAllowedByAcl(null, 'example.org')).toBe(false);
    expect(serverAllowedByAcl(['*'], 'example.org')).toBe(false);
  });
});

describe('globs', () => {
  it.each([
    ['*', '', true],
    ['*', 'anything', true],
    ['?', 'a', true],
    ['?', '', false],
    ['?', 'ab', false],
    ['?.org', 'a.org', true],
    ['?.org', 'ab.org', false],
    ['?.org', '.org', false],
    ['??*.org', 'ab.org', true],
    ['??*.org', 'a.org', false],
    ['*.org', '.org', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXbYcZ', false],
    ['a*b*c', 'acb', false],
    ['*a*a*a*a*a*b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', false],
    ['ex.mple', 'exxmple', false],
    ['EXAMPLE.org', 'example.ORG', true],
    ['?.org', 'é.org', true],
    ['*.example.org', 'a.example.org', true],
    ['*.example.org', 'example.org', false],
  ])('%s against %s → %s', (glob, text, expected) => {
    expect(globMatches(glob, text)).toBe(expected);
  });
});

describe('server names', () => {
  it('the port is stripped, IPv6 brackets kept', () => {
    expect(hostOf('example.org')).toBe('example.org');
    expect(hostOf('example.org:8448')).toBe('example.org');
    expect(hostOf('1.2.3.4:8448')).toBe('1.2.3.4');
    expect(hostOf('[::1]')).toBe('[::1]');
    expect(hostOf('[::1]:8448')).toBe('[::1]');
    expect(hostOf('[2001:db8::1]:1')).toBe('[2001:db8::1]');
  });

  it('IP literals: dotted IPv4 and IPv6', () => {
    expect(isIpLiteral('1.2.3.4')).toBe(true);
    expect(isIpLiteral('255.255.255.255')).toBe(true);
    expect(isIpLiteral('[::1]')).toBe(true);
    expect(isIpLiteral('::1')).toBe(true);
    expect(isIpLiteral('example.org')).toBe(false);
    expect(isIpLiteral('1.2.3.4.5')).toBe(false);
    expect(isIpLiteral('1.2.3')).toBe(false);
    expect(isIpLiteral('1234.1.1.1')).toBe(false);
  });
});
