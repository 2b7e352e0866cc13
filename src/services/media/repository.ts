/**
 * The media repository: uploads (direct, and reserved with POST /create
 * then PUT), lookups for downloads (waiting for reserved content),
 * thumbnails (made on first request, then kept), and deletion; other
 * servers' media fetched over federation (remote-fetch.ts) on first
 * request and cached (remote_content/, `remote_media` rows), one fetch per
 * item however many requests ask for it at once.
 *
 * Files are in Synapse's layout under `media_store_path` (layout.ts). An
 * upload is streamed to incoming/, then renamed into place inside the
 * transaction that records it: a row is never visible without its file,
 * and a file whose row could not be written is removed again.
 *
 * One instance per process (built in services/index.ts), shared by every
 * listener and by the admin API, so there is one thumbnail queue.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../../config/types.js';
import { MatrixError, tooLarge } from '../../matrix-error.js';
import type { Database } from '../../storage/database.js';
import {
  completeReservation,
  deleteExpiredReservations,
  deleteLocalMediaRow,
  getLocalMedia,
  getLocalThumbnails,
  insertLocalMedia,
  insertLocalThumbnail,
  insertReservation,
  type LocalMedia,
  pendingReservations,
  setLocalQuarantined,
  touchLocalMedia,
} from '../../storage/media.js';
import { getRemoteMedia, getRemoteThumbnails, insertRemoteThumbnail, putRemoteMedia, type RemoteMedia, touchRemoteMedia } from '../../storage/remote-media.js';
import type { ThumbnailInfo } from '../../storage/media.js';
import type { FederationClient } from '../federation/federation-client.js';
import { outboundPolicy, outboundRanges } from '../outbound/outbound-config.js';
import type { RateLimiter } from '../rate-limit.js';
import { SERVER_NAME_TAG, SERVER_VERSION } from '../../version.js';
import { essence } from './headers.js';
import { mxcUri, newMediaId } from './ids.js';
import { checkMediaId, checkServerName, isValidMediaId, MediaLayout } from './layout.js';
import { RemoteMediaFetcher } from './remote-fetch.js';
import { SafeFetcher } from './safe-fetch.js';
import { receiveToFile, type ReceivedFile, UploadAborted, UploadTooLarge } from './receive.js';
import { type MediaSettings, mediaSettings } from './settings.js';
import { candidates, outputSize, selectThumbnail, type ThumbnailMethod, type ThumbnailSize } from './thumbnail-sizes.js';
import { type SourceImage, Thumbnailer, ThumbnailRefused, thumbnailType, type ThumbnailType } from './thumbnailer.js';
import { UploadWaiters } from './upload-waiters.js';
import { withSubsystemLogger } from '../../logger.js';
import type { Tx } from '../../storage/db.js';

export interface MediaRepositoryDeps {
  readonly config: HomeserverConfig;
  readonly database: Database;
  readonly logger: Logger;
  readonly services?: { readonly rateLimiter: RateLimiter };
  /** Fetches other servers' media; without it, remote media is 404 as unknown. */
  readonly federation?: Pick<FederationClient, 'requestRaw' | 'allowsDestination'>;
}

export interface UploadMeta {
  /** The Content-Type header; application/octet-stream when absent (spec 1.12). */
  contentType: string | undefined;
  fileName: string | null;
  /** The declared Content-Length, when there is one: refused early when over the limit. */
  contentLength: number | undefined;
}

export interface ThumbnailRequest {
  width: number;
  height: number;
  method: ThumbnailMethod;
  animated: boolean;
}

export interface LookupOptions {
  /** Served by a legacy /_matrix/media endpoint (which does not serve authenticated-only media). */
  legacy: boolean;
  /** How long to wait for reserved content to be uploaded. */
  timeoutMs: number;
  /** False (the legacy endpoints' `allow_remote=false`): other servers' media is 404, cached or not. */
  allowRemote?: boolean;
}

/** What a download serves: local or cached remote media. */
export interface DownloadSource {
  mediaType: string | null;
  uploadName: string | null;
  path: string;
}

/** Where a thumbnail is made from and kept (local media, or a cached remote copy). */
interface ThumbnailSource {
  /** Key of the probe cache. */
  key: string;
  path: string;
  mediaType: string | null;
  remote: boolean;
  dest(size: ThumbnailSize, type: ThumbnailType): string;
  rows(): Promise<ThumbnailInfo[]>;
  record(t: ThumbnailInfo): Promise<void>;
}

export interface ServedThumbnail {
  path: string;
  type: ThumbnailType;
  length: number;
}

/** Types Synapse thumbnails (the contents must agree: see thumbnailer.ts). */
const THUMBNAILABLE = new Set(['image/jpeg', 'image/jpg', 'image/png', 'image/gif', 'image/webp']);
/** last_access_ts is written at most this often per item. */
const ACCESS_TOUCH_INTERVAL_MS = 10 * 60 * 1000;
/** Reserved content is looked for again at least this often while waiting. */
const WAIT_POLL_MS = 1000;
const PROBE_CACHE_SIZE = 1000;

const notFound = (message = 'Not found') => new MatrixError(404, 'M_NOT_FOUND', message);

export class MediaRepository {
  readonly settings: MediaSettings;
  readonly layout: MediaLayout;
  readonly thumbnailer: Thumbnailer;
  private readonly waiters = new UploadWaiters();
  private readonly probes = new Map<string, SourceImage>();
  private readonly making = new Map<string, Promise<number>>();
  private readonly fetching = new Map<string, Promise<RemoteMedia>>();
  private readonly remote: RemoteMediaFetcher | undefined;
  private readonly locationFetcher: SafeFetcher | undefined;

  constructor(private readonly deps: MediaRepositoryDeps) {
    this.deps = withSubsystemLogger(deps, 'axon.media');
    this.settings = mediaSettings(deps.config);
    this.layout = new MediaLayout(this.settings.mediaStorePath);
    this.thumbnailer = new Thumbnailer(this.settings.maxImagePixels, this.layout.incoming());
    if (deps.federation) {
      // A `Location` part is fetched under the outbound policy (ip_range_blacklist), as other outbound requests.
      const fetcher = new SafeFetcher({
        policy: outboundPolicy(outboundRanges(deps.config)),
        maxBytes: this.settings.maxUploadSize,
        timeoutMs: 60_000,
        maxRedirects: 5,
        userAgent: `${SERVER_NAME_TAG}/${SERVER_VERSION}`,
      });
      this.locationFetcher = fetcher;
      this.remote = new RemoteMediaFetcher({
        client: deps.federation,
        fetchLocation: (url) => fetcher.get(url),
        maxBytes: this.settings.maxUploadSize,
        logger: this.deps.logger,
      });
    }
  }

  /** Closes the connections kept for `Location` fetches. */
  async close(): Promise<void> {
    await this.locationFetcher?.close();
  }

  private get db() {
    return this.deps.database.db;
  }

  isLocal(serverName: string): boolean {
    return serverName === this.settings.serverName;
  }

  /**
   * Removes what a crash left in incoming/ (uploads and thumbnails in
   * progress). Only files older than an hour, so another process's upload
   * in progress is left alone.
   */
  async sweepIncoming(olderThanMs = 60 * 60 * 1000): Promise<number> {
    const dir = this.layout.incoming();
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return 0;
    }
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of names) {
      const path = join(dir, name);
      try {
        const st = await stat(path);
        if (st.isFile() && st.mtimeMs < cutoff) {
          await rm(path, { force: true });
          removed++;
        }
      } catch (err) {
        this.deps.logger.warn({ path, err: (err as Error).message }, 'could not clear a leftover upload');
      }
    }
    if (removed > 0) this.deps.logger.info({ removed }, 'removed leftover partial uploads from the media store');
    return removed;
  }

  // ---- uploads ----

  /** POST /upload: stores the body as new media of `userId`; answers its mxc URI. */
  async upload(userId: string, body: Readable, meta: UploadMeta): Promise<string> {
    this.checkDeclaredLength(meta.contentLength);
    const file = await this.receive(body);
    const mediaId = newMediaId();
    const now = Date.now();
    await this.placeFile(file, this.layout.localContent(mediaId), async (tx) => {
      await insertLocalMedia(tx, {
        media_id: mediaId,
        media_type: meta.contentType ?? 'application/octet-stream',
        media_length: file.length,
        upload_name: meta.fileName,
        user_id: userId,
        created_ts: now,
        authenticated: this.settings.authenticatedMedia,
        sha256: file.sha256,
      });
    });
    return mxcUri(this.settings.serverName, mediaId);
  }

  /** POST /create: reserves a media id for `userId` to upload to later. */
  async create(userId: string): Promise<{ content_uri: string; unused_expires_at: number }> {
    this.deps.services?.rateLimiter.check(`media_create:${userId}`, this.settings.rcMediaCreate, { user: userId });
    const now = Date.now();
    const mediaId = newMediaId();
    const expires = now + this.settings.unusedExpirationMs;
    await this.db.transaction().execute(async (tx) => {
      await deleteExpiredReservations(tx, userId, now);
      const pending = await pendingReservations(tx, userId, now);
      if (pending.count >= this.settings.maxPendingUploads) {
        const wait = Math.max(1, (pending.firstExpiry ?? now + 1000) - now);
        throw new MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too many pending media uploads', { retry_after_ms: wait });
      }
      await insertReservation(tx, { media_id: mediaId, user_id: userId, created_ts: now, unused_expires_at: expires, authenticated: this.settings.authenticatedMedia });
    });
    return { content_uri: mxcUri(this.settings.serverName, mediaId), unused_expires_at: expires };
  }

  /** PUT /upload/{serverName}/{mediaId}: fills a reservation, once, by its creator. */
  async uploadToReservation(userId: string, serverName: string, mediaId: string, body: Readable, meta: UploadMeta): Promise<void> {
    checkServerName(serverName);
    if (!this.isLocal(serverName)) throw notFound('Non-local server name specified');
    checkMediaId(mediaId);
    // Checked before reading the body, and again (locked) before storing it.
    this.checkCanUpload(await getLocalMedia(this.db, mediaId), userId);
    this.checkDeclaredLength(meta.contentLength);
    const file = await this.receive(body);
    await this.placeFile(file, this.layout.localContent(mediaId), async (tx) => {
      this.checkCanUpload(await getLocalMedia(tx, mediaId, { forUpdate: true }), userId);
      const filled = await completeReservation(tx, mediaId, {
        media_type: meta.contentType ?? 'application/octet-stream',
        media_length: file.length,
        upload_name: meta.fileName,
        sha256: file.sha256,
        now: Date.now(),
      });
      if (!filled) throw new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media ID already has content');
    });
    this.waiters.notify(mediaId);
  }

  private checkCanUpload(media: LocalMedia | undefined, userId: string): void {
    if (!media) throw notFound('Unknown media ID');
    if (media.user_id !== userId) throw new MatrixError(403, 'M_FORBIDDEN', 'Only the creator of the media ID can upload to it');
    if (media.media_length !== null) throw new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media ID already has content');
    if (media.unused_expires_at !== null && media.unused_expires_at <= Date.now()) throw notFound('Media ID has expired');
  }

  private checkDeclaredLength(length: number | undefined): void {
    if (length !== undefined && length > this.settings.maxUploadSize) throw this.tooLargeError();
  }

  private tooLargeError(): MatrixError {
    return tooLarge(`Cannot upload files larger than ${this.settings.maxUploadSize} bytes`);
  }

  private async receive(body: Readable): Promise<ReceivedFile> {
    try {
      return await receiveToFile(body, this.layout.incoming(), this.settings.maxUploadSize);
    } catch (err) {
      if (err instanceof UploadTooLarge) throw this.tooLargeError();
      if (err instanceof UploadAborted) throw new MatrixError(400, 'M_UNKNOWN', 'Upload incomplete');
      throw err;
    }
  }

  /**
   * Records `file` at `dest` (a local or remote content path): `record`
   * writes the row, the file is renamed into place in the same transaction,
   * and a failure leaves neither file (temporary or final) nor row behind.
   */
  private async placeFile(file: ReceivedFile, dest: string, record: (tx: Tx) => Promise<void>): Promise<void> {
    let moved = false;
    try {
      await this.db.transaction().execute(async (tx) => {
        await record(tx);
        await mkdir(dirname(dest), { recursive: true });
        await rename(file.path, dest);
        moved = true;
      });
    } catch (err) {
      await rm(file.path, { force: true });
      if (moved) await rm(dest, { force: true });
      throw err;
    }
  }

  // ---- downloads ----

  /**
   * The local media a download names, with its file's path: 404 M_NOT_FOUND
   * for unknown, remote, quarantined or (on the legacy endpoints)
   * authenticated-only media; a reservation is waited for up to
   * `timeoutMs`, then 504 M_NOT_YET_UPLOADED.
   */
  async localForDownload(serverName: string, mediaId: string, opts: LookupOptions): Promise<{ media: LocalMedia; path: string }> {
    checkServerName(serverName);
    checkMediaId(mediaId);
    if (!this.isLocal(serverName)) throw notFound();
    const media = await this.awaitContent(mediaId, opts);
    return { media, path: this.layout.localContent(mediaId) };
  }

  /** Any media a download names: this server's (as localForDownload), or another's (as remoteForDownload). */
  async forDownload(serverName: string, mediaId: string, opts: LookupOptions): Promise<DownloadSource> {
    checkServerName(serverName);
    checkMediaId(mediaId);
    if (this.isLocal(serverName)) {
      const { media, path } = await this.localForDownload(serverName, mediaId, opts);
      return { mediaType: media.media_type, uploadName: media.upload_name, path };
    }
    const media = await this.remoteForDownload(serverName, mediaId, opts);
    return { mediaType: media.media_type, uploadName: media.upload_name, path: this.layout.remoteContent(serverName, media.filesystem_id) };
  }

  /**
   * Another server's media, from the cache or fetched now (and cached). 404
   * M_NOT_FOUND for `allow_remote=false`, `prevent_media_downloads_from`
   * servers, quarantined media and (legacy
   * endpoints, with authenticated media on, as Synapse) anything not cached
   * before authenticated media; the fetch's failures as remote-fetch.ts.
   */
  private async remoteForDownload(server: string, mediaId: string, opts: LookupOptions): Promise<RemoteMedia> {
    if (opts.allowRemote === false || this.settings.preventDownloadsFrom.has(server)) throw notFound();
    const row = await getRemoteMedia(this.db, server, mediaId);
    if (opts.legacy && this.settings.authenticatedMedia && (!row || row.authenticated)) throw notFound();
    if (row) {
      if (row.quarantined_by !== null) throw notFound();
      const onDisk = await stat(this.layout.remoteContent(server, row.filesystem_id)).catch(() => undefined);
      if (onDisk) {
        const now = Date.now();
        if (now - (row.last_access_ts ?? 0) > ACCESS_TOUCH_INTERVAL_MS) await touchRemoteMedia(this.db, server, mediaId, now);
        return row;
      }
      this.deps.logger.warn({ server, mediaId }, 'cached remote media file missing: fetching it again');
    }
    if (!this.remote) throw notFound();
    const key = `${server}/${mediaId}`;
    let fetching = this.fetching.get(key);
    if (!fetching) {
      fetching = this.fetchRemote(server, mediaId, opts.timeoutMs, row?.filesystem_id).finally(() => this.fetching.delete(key));
      this.fetching.set(key, fetching);
    }
    return fetching;
  }

  /**
   * Fetches remote media and records it: file renamed into place and row
   * written in one transaction. A row whose file had gone keeps its
   * filesystem id (and so its thumbnails: the content cannot have changed).
   */
  private async fetchRemote(server: string, mediaId: string, waitMs: number, knownFileId: string | undefined): Promise<RemoteMedia> {
    const fetched = await this.remote!.download(server, mediaId, waitMs);
    const file = await receiveToFile(Readable.from([fetched.body]), this.layout.incoming(), this.settings.maxUploadSize);
    const fileId = knownFileId ?? newMediaId();
    const dest = this.layout.remoteContent(server, fileId);
    await this.placeFile(file, dest, async (tx) => {
      // Quarantined meanwhile: not stored (the row stays as it is).
      if ((await getRemoteMedia(tx, server, mediaId))?.quarantined_by) throw notFound();
      await putRemoteMedia(tx, {
        media_origin: server,
        media_id: mediaId,
        filesystem_id: fileId,
        media_type: fetched.contentType ?? 'application/octet-stream',
        media_length: file.length,
        upload_name: fetched.uploadName,
        created_ts: Date.now(),
        authenticated: this.settings.authenticatedMedia,
        sha256: file.sha256,
      });
    });
    this.deps.logger.info({ server, mediaId, length: file.length }, 'cached remote media');
    const row = await getRemoteMedia(this.db, server, mediaId);
    if (!row) throw notFound();
    return row;
  }

  private async awaitContent(mediaId: string, opts: LookupOptions): Promise<LocalMedia> {
    const deadline = Date.now() + Math.max(0, opts.timeoutMs);
    for (;;) {
      const media = await getLocalMedia(this.db, mediaId);
      if (!media || media.quarantined_by !== null) throw notFound();
      if (opts.legacy && media.authenticated && this.settings.authenticatedMedia) throw notFound();
      const now = Date.now();
      if (media.media_length !== null) {
        if (now - (media.last_access_ts ?? 0) > ACCESS_TOUCH_INTERVAL_MS) await touchLocalMedia(this.db, mediaId, now);
        return media;
      }
      if (media.unused_expires_at !== null && media.unused_expires_at <= now) throw notFound();
      const remaining = deadline - now;
      if (remaining <= 0) throw new MatrixError(504, 'M_NOT_YET_UPLOADED', 'Content has not yet been uploaded');
      await this.waiters.wait(mediaId, Math.min(remaining, WAIT_POLL_MS));
    }
  }

  // ---- thumbnails ----

  /**
   * A thumbnail of local or (cached, fetched first if need be) remote media
   * for a request: one of the configured sizes (the best for the request,
   * as Synapse picks) or, with `dynamic_thumbnails`, the size asked for;
   * made the first time, then served from disk. 400 M_UNKNOWN (404
   * M_NOT_FOUND with dynamic thumbnails, as Synapse) for media that cannot
   * be thumbnailed, M_TOO_LARGE for an image over `max_image_pixels` (413
   * for local media, 502 for remote, as the spec has them).
   */
  async thumbnail(serverName: string, mediaId: string, want: ThumbnailRequest, opts: LookupOptions): Promise<ServedThumbnail> {
    checkServerName(serverName);
    checkMediaId(mediaId);
    const src = this.isLocal(serverName) ? await this.localThumbnailSource(serverName, mediaId, opts) : await this.remoteThumbnailSource(serverName, mediaId, opts);
    try {
      if (!THUMBNAILABLE.has(essence(src.mediaType ?? ''))) throw new ThumbnailRefused('unsupported', 'Not an image');
      const image = await this.probe(src.key, src.path);
      const animated = want.animated && this.thumbnailer.canAnimate(image);
      const type = thumbnailType(image.format, animated);
      const size = this.settings.dynamicThumbnails
        ? outputSize(image, want.width, want.height, want.method)
        : selectThumbnail(want.width, want.height, want.method, candidates(image, this.settings.thumbnailSizes));
      if (!size) throw new ThumbnailRefused('unsupported', 'No thumbnail size for this method');
      return await this.thumbnailFile(src, size, type);
    } catch (err) {
      if (!(err instanceof ThumbnailRefused)) throw err;
      // The spec's 502 for remote content too large to thumbnail, 413 for local.
      if (err.reason === 'too_large') throw new MatrixError(src.remote ? 502 : 413, 'M_TOO_LARGE', 'Content is too large to thumbnail');
      if (this.settings.dynamicThumbnails) throw notFound('Cannot generate a thumbnail for the requested content');
      throw new MatrixError(400, 'M_UNKNOWN', 'Cannot generate thumbnails for the requested content');
    }
  }

  private async localThumbnailSource(serverName: string, mediaId: string, opts: LookupOptions): Promise<ThumbnailSource> {
    const { media, path } = await this.localForDownload(serverName, mediaId, opts);
    return {
      key: mediaId,
      path,
      mediaType: media.media_type,
      remote: false,
      dest: (size, type) => this.layout.localThumbnail(mediaId, size.width, size.height, type, size.method),
      rows: () => getLocalThumbnails(this.db, mediaId),
      record: (t) => insertLocalThumbnail(this.db, mediaId, t),
    };
  }

  /** Remote media is thumbnailed here, from the cached original (fetched first when needed), as Synapse does. */
  private async remoteThumbnailSource(server: string, mediaId: string, opts: LookupOptions): Promise<ThumbnailSource> {
    const media = await this.remoteForDownload(server, mediaId, opts);
    const fileId = media.filesystem_id;
    return {
      key: `${server}/${fileId}`,
      path: this.layout.remoteContent(server, fileId),
      mediaType: media.media_type,
      remote: true,
      dest: (size, type) => this.layout.remoteThumbnail(server, fileId, size.width, size.height, type, size.method),
      rows: () => getRemoteThumbnails(this.db, server, mediaId),
      record: (t) => insertRemoteThumbnail(this.db, server, mediaId, t),
    };
  }

  private async probe(mediaId: string, path: string): Promise<SourceImage> {
    const known = this.probes.get(mediaId);
    if (known) return known;
    let src: SourceImage;
    try {
      src = await this.thumbnailer.probe(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw this.missingFile(mediaId);
      throw err;
    }
    if (this.probes.size >= PROBE_CACHE_SIZE) this.probes.delete(this.probes.keys().next().value!);
    this.probes.set(mediaId, src);
    return src;
  }

  private missingFile(mediaId: string): MatrixError {
    this.deps.logger.warn({ mediaId }, 'media file missing from the media store');
    return notFound();
  }

  private async thumbnailFile(src: ThumbnailSource, size: ThumbnailSize, type: ThumbnailType): Promise<ServedThumbnail> {
    const dest = src.dest(size, type);
    const rows = await src.rows();
    const row = rows.find((r) => r.width === size.width && r.height === size.height && r.type === type && r.method === size.method);
    if (row) {
      const onDisk = await stat(dest).catch(() => undefined);
      if (onDisk) return { path: dest, type, length: onDisk.size };
    }
    // One generation per file, however many requests ask for it at once.
    let making = this.making.get(dest);
    if (!making) {
      making = this.thumbnailer.generate(src.path, dest, size, type).finally(() => this.making.delete(dest));
      this.making.set(dest, making);
    }
    const length = await making;
    try {
      await src.record({ width: size.width, height: size.height, type, method: size.method, length });
    } catch (err) {
      // The media was deleted meanwhile (the row's foreign key): nothing to serve.
      await rm(dest, { force: true });
      this.deps.logger.info({ media: src.key, err: (err as Error).message }, 'thumbnail not recorded');
      throw notFound();
    }
    return { path: dest, type, length };
  }

  // ---- administration (used by the admin API) ----

  async getLocal(mediaId: string): Promise<LocalMedia | undefined> {
    if (!isValidMediaId(mediaId)) return undefined;
    return getLocalMedia(this.db, mediaId);
  }

  /** Deletes local media: its row and thumbnail rows, then its file and thumbnails. False when it did not exist. */
  async deleteLocal(mediaId: string): Promise<boolean> {
    if (!isValidMediaId(mediaId)) return false;
    const deleted = await this.db.transaction().execute((tx) => deleteLocalMediaRow(tx, mediaId));
    this.probes.delete(mediaId);
    if (!deleted) return false;
    for (const path of [this.layout.localContent(mediaId), this.layout.localThumbnailDir(mediaId)]) {
      await rm(path, { recursive: true, force: true }).catch((err: Error) => this.deps.logger.warn({ mediaId, err: err.message }, 'could not remove a media file'));
    }
    return true;
  }

  /** Quarantines local media (`by` an admin's user id) or releases it (null). False when it does not exist. */
  async quarantineLocal(mediaId: string, by: string | null): Promise<boolean> {
    if (!isValidMediaId(mediaId)) return false;
    return this.db.transaction().execute((tx) => setLocalQuarantined(tx, mediaId, by));
  }
}
