/** Synapse's choice of thumbnail among the configured sizes, and sizes that never exceed the source. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_THUMBNAIL_SIZES } from '../../src/config/defaults.js';
import { candidates, croppedSize, scaledSize, selectThumbnail } from '../../src/services/media/thumbnail-sizes.js';

const photo = { width: 4000, height: 3000 };
const pick = (w: number, h: number, m: 'crop' | 'scale', src = photo) => {
  const t = selectThumbnail(w, h, m, candidates(src, DEFAULT_THUMBNAIL_SIZES));
  return t && `${t.width}x${t.height}`;
};

describe('thumbnail sizes', () => {
  it('scale keeps the aspect ratio inside the box and never exceeds the source', () => {
    expect(scaledSize(photo, 320, 240)).toEqual({ width: 320, height: 240 });
    expect(scaledSize({ width: 1000, height: 500 }, 320, 240)).toEqual({ width: 320, height: 160 });
    expect(scaledSize({ width: 500, height: 1000 }, 320, 240)).toEqual({ width: 120, height: 240 });
    expect(scaledSize({ width: 20, height: 10 }, 800, 600)).toEqual({ width: 20, height: 10 });
    expect(scaledSize({ width: 10000, height: 1 }, 32, 32)).toEqual({ width: 32, height: 1 });
  });

  it('crop keeps the box aspect ratio, shrunk to the source when it is smaller', () => {
    expect(croppedSize(photo, 96, 96)).toEqual({ width: 96, height: 96 });
    expect(croppedSize({ width: 20, height: 10 }, 96, 96)).toEqual({ width: 10, height: 10 });
    expect(croppedSize({ width: 50, height: 50 }, 100, 50)).toEqual({ width: 50, height: 25 });
  });

  it('the configured sizes come out once each for a small source', () => {
    expect(candidates({ width: 20, height: 20 }, DEFAULT_THUMBNAIL_SIZES)).toEqual([
      { width: 20, height: 20, method: 'crop' },
      { width: 20, height: 20, method: 'scale' },
    ]);
  });

  it('crop requests get the closest aspect ratio among crops reaching the size', () => {
    expect(pick(32, 32, 'crop')).toBe('32x32');
    expect(pick(33, 33, 'crop')).toBe('96x96');
    expect(pick(96, 96, 'crop')).toBe('96x96');
    // Nothing reaches 200x200: the closest smaller one.
    expect(pick(200, 200, 'crop')).toBe('96x96');
  });

  it('scale requests get the closest scaled size reaching the width or height', () => {
    expect(pick(320, 240, 'scale')).toBe('320x240');
    // Reaching the width or the height is enough (as Synapse).
    expect(pick(321, 200, 'scale')).toBe('320x240');
    expect(pick(321, 241, 'scale')).toBe('640x480');
    expect(pick(700, 500, 'scale')).toBe('800x600');
    expect(pick(2000, 2000, 'scale')).toBe('800x600');
    expect(pick(1, 1, 'scale')).toBe('320x240');
  });

  it('none for a method no configured size has', () => {
    expect(selectThumbnail(32, 32, 'crop', candidates(photo, [{ width: 320, height: 240, method: 'scale' }]))).toBeUndefined();
  });
});
