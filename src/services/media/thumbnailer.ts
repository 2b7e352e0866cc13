/**
 * Makes thumbnails with sharp (libvips), bounded for a 1 GB machine:
 *
 * - only JPEG, PNG, GIF and WebP are decoded, recognised by their magic
 *   bytes (whatever Content-Type the uploader claimed), so no other libvips
 *   loader (SVG, PDF, TIFF, ...) ever sees uploaded bytes;
 * - the image header is read first and an image with more pixels than
 *   `max_image_pixels` is refused before anything is decoded (sharp's
 *   `limitInputPixels` is set as well);
 * - one thumbnail is made at a time (a queue), with sharp's cache off and
 *   one libvips thread, so memory stays near one decoded image.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Metadata } from 'sharp';
import { loadSharp } from './sharp-loader.js';
import { MatrixError } from '../../matrix-error.js';
import { type ImageFormat, SNIFF_BYTES, sniffFormat } from './sniff.js';
import type { Dimensions, ThumbnailSize } from './thumbnail-sizes.js';

export type { ImageFormat };

export type ThumbnailType = 'image/jpeg' | 'image/png' | 'image/webp';

export interface SourceImage extends Dimensions {
  format: ImageFormat;
  /** Frames (1 for still images). */
  pages: number;
}

/** Why an image gets no thumbnail; the HTTP layer turns it into the spec's error. */
export class ThumbnailRefused extends Error {
  constructor(
    readonly reason: 'unsupported' | 'too_large',
    message: string,
  ) {
    super(message);
  }
}

/** The thumbnail content types Synapse makes: JPEG from JPEG, PNG from the rest; animated ones are WebP. */
export function thumbnailType(format: ImageFormat, animated: boolean): ThumbnailType {
  if (animated) return 'image/webp';
  return format === 'jpeg' ? 'image/jpeg' : 'image/png';
}

const MAX_QUEUED = 64;

export class Thumbnailer {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  constructor(
    private readonly maxImagePixels: number,
    private readonly incomingDir: string,
  ) {}

  /** Reads what an image is from its header only; refuses formats we do not decode and images over the pixel limit. */
  async probe(path: string): Promise<SourceImage> {
    const head = Buffer.alloc(SNIFF_BYTES);
    const fh = await open(path, 'r');
    let n: number;
    try {
      ({ bytesRead: n } = await fh.read(head, 0, head.length, 0));
    } finally {
      await fh.close();
    }
    const format = sniffFormat(head.subarray(0, n));
    if (!format) throw new ThumbnailRefused('unsupported', 'Not an image format we can thumbnail');
    let meta: Metadata;
    try {
      // Header only: limitInputPixels is off here so that we check (and report) the size ourselves.
      const sharp = await loadSharp();
      meta = await sharp(path, { limitInputPixels: false }).metadata();
    } catch {
      throw new ThumbnailRefused('unsupported', 'Cannot read the image');
    }
    if (meta.format !== format) throw new ThumbnailRefused('unsupported', 'Image format does not match its contents');
    const rawW = meta.width ?? 0;
    const rawH = meta.pageHeight ?? meta.height ?? 0;
    if (rawW < 1 || rawH < 1) throw new ThumbnailRefused('unsupported', 'Image has no size');
    if (rawW * rawH > this.maxImagePixels) throw new ThumbnailRefused('too_large', 'Image too large to thumbnail');
    // EXIF orientations 5-8 swap width and height; thumbnails are made upright.
    const swap = (meta.orientation ?? 1) >= 5;
    return { format, width: swap ? rawH : rawW, height: swap ? rawW : rawH, pages: Math.max(1, meta.pages ?? 1) };
  }

  /** Whether an animated thumbnail can be made within the pixel limit (all frames are decoded together). */
  canAnimate(src: SourceImage): boolean {
    return src.pages > 1 && (src.format === 'gif' || src.format === 'webp') && src.width * src.height * src.pages <= this.maxImagePixels;
  }

  /** Thumbnails waiting or being made (for tests and metrics). */
  pending(): number {
    return this.queued;
  }

  /**
   * Makes one thumbnail of `sourcePath` at exactly `size` and writes it to
   * `destPath` (through a temporary file, so no half file is ever served).
   * Queued behind the thumbnails in progress. Returns its length in bytes.
   */
  async generate(sourcePath: string, destPath: string, size: ThumbnailSize, type: ThumbnailType): Promise<number> {
    if (this.queued >= MAX_QUEUED) {
      throw new MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too many thumbnails being made; try again shortly', { retry_after_ms: 1000 });
    }
    this.queued++;
    const job = () => this.make(sourcePath, destPath, size, type);
    const run = this.tail.then(job, job);
    this.tail = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      this.queued--;
    }
  }

  private async make(sourcePath: string, destPath: string, size: ThumbnailSize, type: ThumbnailType): Promise<number> {
    await mkdir(this.incomingDir, { recursive: true });
    const tmp = join(this.incomingDir, `thumb-${Date.now()}-${randomBytes(6).toString('hex')}`);
    const sharp = await loadSharp();
    try {
      let img = sharp(sourcePath, { animated: type === 'image/webp', limitInputPixels: this.maxImagePixels, failOn: 'error' })
        .autoOrient()
        .resize(size.width, size.height, { fit: size.method === 'crop' ? 'cover' : 'fill', position: 'centre' });
      if (type === 'image/jpeg') img = img.jpeg({ quality: 80 });
      else if (type === 'image/png') img = img.png({ compressionLevel: 6 });
      else img = img.webp({ quality: 75, effort: 2 });
      await img.toFile(tmp);
    } catch (err) {
      await rm(tmp, { force: true });
      if (err instanceof Error && /pixel limit/i.test(err.message)) throw new ThumbnailRefused('too_large', 'Image too large to thumbnail');
      throw new ThumbnailRefused('unsupported', 'Cannot thumbnail this image');
    }
    try {
      await mkdir(dirname(destPath), { recursive: true });
      await rename(tmp, destPath);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return (await stat(destPath)).size;
  }
}
