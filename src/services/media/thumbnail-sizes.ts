/**
 * Which thumbnail to make or serve for a request, as Synapse chooses:
 *
 * - Thumbnail sizes never exceed the source (the spec forbids upscaling):
 *   `scale` fits the image inside the box keeping its aspect ratio; `crop`
 *   fills the box's aspect ratio, shrunk to fit the source when the source
 *   is smaller.
 * - With `dynamic_thumbnails` off, the candidates are the configured
 *   `thumbnail_sizes` (as they come out for this image) and a request gets
 *   the best of those of its method: for `crop`, the closest aspect ratio,
 *   then one at least as large as asked, then the closest size; for
 *   `scale`, the closest size among those reaching the asked width or
 *   height. Candidates smaller than asked are used only when nothing
 *   reaches it.
 */

export type ThumbnailMethod = 'crop' | 'scale';

export interface ThumbnailSize {
  width: number;
  height: number;
  method: ThumbnailMethod;
}

export interface Dimensions {
  width: number;
  height: number;
}

/** `scale`: the largest size inside width×height with the source's aspect ratio, never larger than the source. */
export function scaledSize(src: Dimensions, width: number, height: number): Dimensions {
  if (width >= src.width && height >= src.height) return { width: src.width, height: src.height };
  if (width * src.height < height * src.width) {
    return { width, height: Math.max(1, Math.floor((width * src.height) / src.width)) };
  }
  return { width: Math.max(1, Math.floor((height * src.width) / src.height)), height };
}

/** `crop`: width×height, or the largest size of that aspect ratio the source holds when it is smaller. */
export function croppedSize(src: Dimensions, width: number, height: number): Dimensions {
  const s = Math.min(1, src.width / width, src.height / height);
  if (s >= 1) return { width, height };
  return { width: Math.max(1, Math.floor(width * s)), height: Math.max(1, Math.floor(height * s)) };
}

/** The size a thumbnail of `src` made for a request of width×height by `method` comes out at. */
export function outputSize(src: Dimensions, width: number, height: number, method: ThumbnailMethod): ThumbnailSize {
  const d = method === 'crop' ? croppedSize(src, width, height) : scaledSize(src, width, height);
  return { ...d, method };
}

/** The configured sizes as they come out for this source, without repeats. */
export function candidates(src: Dimensions, configured: readonly ThumbnailSize[]): ThumbnailSize[] {
  const seen = new Set<string>();
  const out: ThumbnailSize[] = [];
  for (const c of configured) {
    const t = outputSize(src, c.width, c.height, c.method);
    const key = `${t.width}x${t.height}:${t.method}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(t);
  }
  return out;
}

function lexicalMin<T>(items: { key: number[]; item: T }[]): T | undefined {
  let best: { key: number[]; item: T } | undefined;
  for (const it of items) {
    if (!best) {
      best = it;
      continue;
    }
    for (let i = 0; i < it.key.length; i++) {
      const a = it.key[i]!;
      const b = best.key[i]!;
      if (a < b) {
        best = it;
        break;
      }
      if (a > b) break;
    }
  }
  return best?.item;
}

/** The best of `available` for a request of width×height by `method`, or undefined when none has that method. */
export function selectThumbnail<T extends ThumbnailSize>(width: number, height: number, method: ThumbnailMethod, available: readonly T[]): T | undefined {
  const reaching: { key: number[]; item: T }[] = [];
  const smaller: { key: number[]; item: T }[] = [];
  for (const t of available) {
    if (t.method !== method) continue;
    const sizeQuality = Math.abs((width - t.width) * (height - t.height));
    const key = method === 'crop' ? [Math.abs(width * t.height - height * t.width), width <= t.width && height <= t.height ? 0 : 1, sizeQuality] : [sizeQuality];
    (t.width >= width || t.height >= height ? reaching : smaller).push({ key, item: t });
  }
  return lexicalMin(reaching) ?? lexicalMin(smaller);
}
