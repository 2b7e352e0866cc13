/** Content-Type and Content-Disposition for served media. */
import { describe, expect, it } from 'vitest';
import { contentDisposition, filenameParam, servedContentType } from '../../src/services/media/headers.js';
import { contradictsClaimedImage } from '../../src/services/media/sniff.js';

describe('media headers', () => {
  it('serves the stored type, octet-stream for a missing or unusable one, text with a charset', () => {
    expect(servedContentType('image/png')).toBe('image/png');
    expect(servedContentType(null)).toBe('application/octet-stream');
    expect(servedContentType('not a type')).toBe('application/octet-stream');
    expect(servedContentType('text/plain\u00e9')).toBe('application/octet-stream');
    expect(servedContentType('text/html')).toBe('text/html; charset=UTF-8');
    expect(servedContentType('text/plain; charset=latin1')).toBe('text/plain; charset=latin1');
  });

  it('is inline only for the spec list, whatever the case or parameters', () => {
    expect(contentDisposition('IMAGE/PNG', null)).toBe('inline');
    expect(contentDisposition('text/plain; charset=UTF-8', 'a.txt')).toBe('inline; filename=a.txt');
    expect(contentDisposition('text/html; charset=UTF-8', 'a.html')).toBe('attachment; filename=a.html');
    expect(contentDisposition('image/svg+xml', null)).toBe('attachment');
    expect(contentDisposition('application/pdf', null)).toBe('attachment');
  });

  it('encodes file names as RFC 6266 asks', () => {
    expect(filenameParam('a.png')).toBe('filename=a.png');
    expect(filenameParam('a b.png')).toBe('filename="a b.png"');
    expect(filenameParam('a"b.png')).toBe(`filename*=utf-8''a%22b.png`);
    expect(filenameParam('\u00e9\r\n.png')).toBe(`filename*=utf-8''%C3%A9%0D%0A.png`);
  });

  it('notices content contradicting its claimed image type', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]);
    expect(contradictsClaimedImage('image/png', png)).toBe(false);
    expect(contradictsClaimedImage('image/jpeg', png)).toBe(true);
    expect(contradictsClaimedImage('image/png', Buffer.from('<html>'))).toBe(true);
    expect(contradictsClaimedImage('text/plain', Buffer.from('<html>'))).toBe(false);
  });
});
