/**
 * The media repository's settings. Most are parsed by the configuration
 * loader (rc_media_create among them); the ones for asynchronous uploads
 * (`max_pending_media_uploads`, `unused_expiration_time`) and
 * `prevent_media_downloads_from` are read here from the raw homeserver.yaml,
 * with Synapse's defaults.
 */
import type { HomeserverConfig, RateLimitConfig } from '../../config/types.js';
import { parseDuration } from '../../config/durations.js';
import type { ThumbnailSize } from './thumbnail-sizes.js';

export interface MediaSettings {
  serverName: string;
  mediaStorePath: string;
  maxUploadSize: number;
  maxImagePixels: number;
  /** Uploads are marked authenticated-only, and the legacy endpoints refuse such media. */
  authenticatedMedia: boolean;
  dynamicThumbnails: boolean;
  thumbnailSizes: readonly ThumbnailSize[];
  /** Reservations (POST /create) a user may have waiting for content. */
  maxPendingUploads: number;
  /** How long a reservation waits for its content. */
  unusedExpirationMs: number;
  rcMediaCreate: RateLimitConfig;
  /** Servers whose media is never fetched nor served, cached or not (404). */
  preventDownloadsFrom: ReadonlySet<string>;
}

const DEFAULT_MAX_PENDING = 5;
const DEFAULT_UNUSED_EXPIRATION_MS = 24 * 60 * 60 * 1000;

function serverList(v: unknown, key: string): Set<string> {
  if (v === undefined || v === null) return new Set();
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${key}: expected a list of server names`);
  return new Set(v as string[]);
}

function nonNegativeInt(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  throw new Error(`${key}: expected a whole number, got ${JSON.stringify(v)}`);
}

export function mediaSettings(config: HomeserverConfig): MediaSettings {
  const raw = config.raw;
  let unusedExpirationMs = DEFAULT_UNUSED_EXPIRATION_MS;
  if (raw.unused_expiration_time !== undefined && raw.unused_expiration_time !== null) {
    try {
      unusedExpirationMs = parseDuration(raw.unused_expiration_time);
    } catch (err) {
      throw new Error(`unused_expiration_time: ${(err as Error).message}`);
    }
  }
  return {
    serverName: config.server_name,
    mediaStorePath: config.media_store_path,
    maxUploadSize: config.max_upload_size,
    maxImagePixels: config.max_image_pixels,
    authenticatedMedia: config.enable_authenticated_media,
    dynamicThumbnails: config.dynamic_thumbnails,
    thumbnailSizes: config.thumbnail_sizes,
    maxPendingUploads:
      raw.max_pending_media_uploads === undefined || raw.max_pending_media_uploads === null
        ? DEFAULT_MAX_PENDING
        : nonNegativeInt(raw.max_pending_media_uploads, 'max_pending_media_uploads'),
    unusedExpirationMs,
    rcMediaCreate: config.rc_media_create,
    preventDownloadsFrom: serverList(raw.prevent_media_downloads_from, 'prevent_media_downloads_from'),
  };
}
