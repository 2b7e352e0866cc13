/**
 * URL previews: the OpenGraph object for a web page or image, for
 * GET /_matrix/client/v1/media/preview_url.
 *
 * - The URL must be http(s) and not refused by url_preview_url_blacklist;
 *   it is fetched by SafeFetcher (IP blacklist on every hop and address,
 *   size and time bounds).
 * - An HTML page gives its og:* properties (with <title>, the description
 *   meta tags and the first image as fallbacks); its image is fetched the
 *   same way and stored as local media, so og:image is an mxc URI.
 * - An image URL gives og:image for the image itself.
 * - Other content types are refused (502), as Synapse refuses them.
 * - Answers are kept in memory for an hour per URL (failures for a minute),
 *   and concurrent requests for one URL share one fetch.
 */
import { loadSharp } from './sharp-loader.js';
import type { Logger } from 'pino';
import { MatrixError } from '../../matrix-error.js';
import { SERVER_NAME_TAG, SERVER_VERSION } from '../../version.js';
import { decodeHtml, openGraph } from './html-meta.js';
import { AddressPolicy, URL_PREVIEW_KEYS } from '../outbound/ip-ranges.js';
import { type PreviewConfig, urlBlocked } from './preview-config.js';
import { BlockedAddressError, FetchFailedError, FetchTimeoutError, FetchTooLargeError, SafeFetcher, type Fetched } from './safe-fetch.js';
import { withSubsystemLogger } from '../../logger.js';

/** Stores an image fetched for a preview as local media; answers its mxc URI. */
export type PreviewImageStore = (image: { userId: string; body: Buffer; contentType: string; uploadName: string | null }) => Promise<string>;

export interface UrlPreviewDeps {
  config: PreviewConfig;
  logger: Logger;
  /** Absent: previews carry no og:image. */
  storeImage?: PreviewImageStore;
  maxImagePixels: number;
  /** Defaults: 1 hour, 1 minute, 30 s, 5 redirects, 1000 URLs. */
  cacheTtlMs?: number;
  failureTtlMs?: number;
  timeoutMs?: number;
  maxRedirects?: number;
  maxCacheEntries?: number;
}

export type OpenGraphObject = Record<string, string | number>;

interface CacheEntry {
  expires: number;
  value: Promise<OpenGraphObject>;
}

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);
const ACCEPT_PAGE = 'text/html,application/xhtml+xml;q=0.9,image/*;q=0.8,*/*;q=0.1';

function essence(contentType: string | null): string {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/** The name a fetched image is stored under: the last path segment, if any. */
function nameFromUrl(url: URL): string | null {
  const last = url.pathname.split('/').pop() ?? '';
  try {
    const name = decodeURIComponent(last);
    return name && name.length <= 255 && !/[\u0000-\u001f]/.test(name) ? name : null;
  } catch {
    return null;
  }
}

/** Parses the `url` parameter: an absolute http(s) URL, or 400. */
export function parsePreviewUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MatrixError(400, 'M_INVALID_PARAM', 'Only http and https URLs can be previewed');
  return url;
}

export class UrlPreviewService {
  private readonly fetcher: SafeFetcher;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly ttl: number;
  private readonly failureTtl: number;
  private readonly maxEntries: number;

  constructor(private readonly d: UrlPreviewDeps) {
    this.d = withSubsystemLogger(d, 'axon.media');
    this.fetcher = new SafeFetcher({
      policy: new AddressPolicy(d.config.blacklist, d.config.whitelist, URL_PREVIEW_KEYS),
      maxBytes: d.config.maxSpiderSize,
      timeoutMs: d.timeoutMs ?? 30_000,
      maxRedirects: d.maxRedirects ?? 5,
      userAgent: `${SERVER_NAME_TAG}/${SERVER_VERSION} (bot; URL preview)`,
      acceptLanguage: d.config.acceptLanguage,
    });
    this.ttl = d.cacheTtlMs ?? 60 * 60 * 1000;
    this.failureTtl = d.failureTtlMs ?? 60 * 1000;
    this.maxEntries = d.maxCacheEntries ?? 1000;
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.fetcher.close();
  }

  /** The preview of `url` (already parsed by parsePreviewUrl), for `userId`. */
  async preview(url: URL, userId: string): Promise<OpenGraphObject> {
    if (urlBlocked(this.d.config.urlRules, url)) throw new MatrixError(403, 'M_UNKNOWN', 'URL blocked');
    const key = url.href;
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) return hit.value;
    if (hit) this.cache.delete(key);

    const value = this.build(url, userId);
    const entry: CacheEntry = { expires: now + this.ttl, value };
    this.remember(key, entry);
    value.catch(() => {
      // Failures are remembered briefly, so a bad URL is not fetched again at once.
      entry.expires = Math.min(entry.expires, Date.now() + this.failureTtl);
    });
    return value;
  }

  private remember(key: string, entry: CacheEntry): void {
    this.cache.set(key, entry);
    if (this.cache.size <= this.maxEntries) return;
    const now = Date.now();
    for (const [k, e] of this.cache) {
      if (e.expires <= now) this.cache.delete(k);
    }
    // Still too many: drop the oldest (Map keeps insertion order).
    for (const k of this.cache.keys()) {
      if (this.cache.size <= this.maxEntries) break;
      this.cache.delete(k);
    }
  }

  private async build(url: URL, userId: string): Promise<OpenGraphObject> {
    const page = await this.fetch(url, ACCEPT_PAGE);
    const type = essence(page.contentType);
    if (type.startsWith('image/')) {
      const image = await this.imageFields(page, userId);
      if (!image) return {};
      return { ...image };
    }
    if (!HTML_TYPES.has(type)) {
      throw new MatrixError(502, 'M_UNKNOWN', `Requested file's content type not allowed for this operation: ${type || 'unknown'}`);
    }
    const og: OpenGraphObject = openGraph(decodeHtml(page.contentType, page.body), page.url);
    const imageUrl = og['og:image'];
    // The page's own image fields describe a remote file; ours replace them, or none stay.
    for (const k of Object.keys(og)) if (k === 'og:image' || k.startsWith('og:image:')) delete og[k];
    if (typeof imageUrl === 'string' && this.d.storeImage) {
      const fields = await this.pageImage(new URL(imageUrl), userId);
      if (fields) Object.assign(og, fields);
    }
    return og;
  }

  /** Fetches the page's image; a failure only means no image. */
  private async pageImage(url: URL, userId: string): Promise<OpenGraphObject | undefined> {
    try {
      const image = await this.fetcher.get(url, 'image/*');
      if (!essence(image.contentType).startsWith('image/')) return undefined;
      return await this.imageFields(image, userId);
    } catch (err) {
      this.d.logger.debug({ err: (err as Error).message }, 'URL preview: image not fetched');
      return undefined;
    }
  }

  /** Stores a fetched image; answers og:image (mxc), its type, size and dimensions. */
  private async imageFields(image: Fetched, userId: string): Promise<OpenGraphObject | undefined> {
    if (!this.d.storeImage || image.body.length === 0) return undefined;
    const contentType = essence(image.contentType);
    const mxc = await this.d.storeImage({ userId, body: image.body, contentType, uploadName: nameFromUrl(image.url) });
    const fields: OpenGraphObject = { 'og:image': mxc, 'og:image:type': contentType, 'matrix:image:size': image.body.length };
    try {
      const sharp = await loadSharp();
      const meta = await sharp(image.body, { limitInputPixels: this.d.maxImagePixels }).metadata();
      if (meta.width && meta.height) {
        fields['og:image:width'] = meta.width;
        fields['og:image:height'] = meta.height;
      }
    } catch {
      // Not an image sharp reads (or too large): the preview goes without dimensions.
    }
    return fields;
  }

  /** Fetches through the safe fetcher, turning its failures into Matrix errors. */
  private async fetch(url: URL, accept: string): Promise<Fetched> {
    try {
      return await this.fetcher.get(url, accept);
    } catch (err) {
      if (err instanceof BlockedAddressError) throw new MatrixError(403, 'M_UNKNOWN', 'IP address blocked by IP blacklist entry');
      if (err instanceof FetchTooLargeError) {
        throw new MatrixError(502, 'M_TOO_LARGE', `Requested file is too large > ${err.limit} bytes`);
      }
      if (err instanceof FetchTimeoutError) throw new MatrixError(504, 'M_UNKNOWN', 'Timed out fetching the URL');
      if (err instanceof FetchFailedError) throw new MatrixError(502, 'M_UNKNOWN', err.message);
      this.d.logger.info({ err: (err as Error).message }, 'URL preview: fetch failed');
      throw new MatrixError(502, 'M_UNKNOWN', 'Failed to download content');
    }
  }
}
