/**
 * sharp (libvips) is loaded on the first image it is asked about, not at
 * start-up: it costs ~70 ms to load and native memory, and a server may
 * run for hours before anyone uploads an image. Configured process-wide
 * once: no operation cache (it holds decoded images) and one libvips
 * worker thread, for a 1 GB machine.
 */
import type { Sharp, SharpOptions } from 'sharp';

type SharpFactory = (input?: string | Buffer, options?: SharpOptions) => Sharp;

let loading: Promise<SharpFactory> | undefined;

export function loadSharp(): Promise<SharpFactory> {
  loading ??= import('sharp').then(({ default: sharp }) => {
    sharp.cache(false);
    sharp.concurrency(1);
    return sharp as SharpFactory;
  });
  return loading;
}
