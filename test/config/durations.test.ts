import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize } from '../../src/config/durations.js';
import { InvalidValueError } from '../../src/config/errors.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('parseDuration (Synapse: s m h d w y; no suffix = ms)', () => {
  it.each([
    ['30s', 30 * S],
    ['5m', 5 * M],
    ['1h', H],
    ['7d', 7 * D],
    ['1w', 7 * D],
    ['2w', 14 * D],
    ['1y', 365 * D],
    ['500ms', 500],
    ['86400000', D],
    ['0', 0],
    [86400000, D],
    [0, 0],
    [1500, 1500],
  ] as const)('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([
    ['1H'], // suffixes are case-sensitive in Synapse
    ['1 h'],
    [' 1h'],
    ['1.5h'],
    ['-5m'],
    ['1mo'],
    ['h'],
    [''],
    [1.5],
    [-1],
    [true],
    [null],
    [[1]],
    [{ seconds: 1 }],
  ] as const)('rejects %j', (input) => {
    expect(() => parseDuration(input)).toThrow(InvalidValueError);
  });

  it('names the accepted forms in its message', () => {
    expect(() => parseDuration('1 hour')).toThrow(/expected a duration such as "30s".*got "1 hour"/);
  });

  it('rejects values beyond exact integer range', () => {
    expect(() => parseDuration('999999999999y')).toThrow(/too large/);
  });
});

describe('parseSize (Synapse: K M G T, binary; no suffix = bytes)', () => {
  it.each([
    ['10K', 10 * 1024],
    ['50M', 50 * 1024 * 1024],
    ['32M', 33554432],
    ['1G', 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['1024', 1024],
    ['0', 0],
    [52428800, 52428800],
    [0, 0],
  ] as const)('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each([['50m'], ['10k'], ['50MB'], ['1.5G'], ['-1K'], ['M'], ['50 M'], [''], [1.5], [-1], [false], [null]] as const)(
    'rejects %j',
    (input) => {
      expect(() => parseSize(input)).toThrow(InvalidValueError);
    },
  );

  it('names the accepted forms in its message', () => {
    expect(() => parseSize('50MB')).toThrow(/expected a size such as "10K", "50M".*got "50MB"/);
  });
});
