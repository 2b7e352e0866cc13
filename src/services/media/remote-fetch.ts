/**
 * Fetching another server's media over federation (spec 1.11 "Content
 * Repository" in the server-server API):
 *
 * - first `GET /_matrix/federation/v1/media/download/{mediaId}`, signed,
 *   answered `multipart/mixed`: JSON metadata, then the bytes or a
 *   `Location` to fetch them from (fetched through the outbound-guarded
 *   SafeFetcher: ip_range_blacklist on every hop, redirects bounded);
 * - when the server does not know that endpoint (404/405 with
 *   M_UNRECOGNIZED or no JSON body, or 400 M_UNRECOGNIZED from older
 *   Synapses, as Synapse decides), the deprecated
 *   `GET /_matrix/media/v3/download/{serverName}/{mediaId}?allow_remote=false`.
 *
 * Everything is bounded by `max_upload_size`, and held in memory while it
 * arrives: at most MAX_CONCURRENT fetches run at once, the rest wait their
 * turn. Failures take Synapse's
 * shapes: the remote's 404 is 404 M_NOT_FOUND; too large is 502
 * M_TOO_LARGE; anything else (unreachable, another status, an answer we
 * cannot read) is 502 M_UNKNOWN "Failed to fetch remote media".
 */
import type { Logger } from 'pino';
import { MatrixError } from '../../matrix-error.js';
import { FederationRequestError, FederationResponseTooLarge, type FederationClient, type RawFederationResponse } from '../federation/federation-client.js';
import { filenameFromDisposition } from './headers.js';
import { MultipartError, multipartBoundary, parseMultipart } from './multipart.js';
import { FetchTooLargeError, type Fetched } from './safe-fetch.js';

/** A remote file as fetched, before it is stored. */
export interface RemoteFile {
  contentType: string | null;
  uploadName: string | null;
  body: Buffer;
}

export interface RemoteFetchDeps {
  client: Pick<FederationClient, 'requestRaw' | 'allowsDestination'>;
  /** Fetches a `Location` part's URL (SafeFetcher.get: guarded, bounded, redirects followed). */
  fetchLocation: (url: URL) => Promise<Fetched>;
  maxBytes: number;
  logger: Logger;
  /** The whole federation request (default 60 s). */
  timeoutMs?: number;
}

/** Fetches in flight at once (each may hold up to max_upload_size). */
const MAX_CONCURRENT = 8;

/** Room for the multipart framing and metadata on top of the media itself. */
const FRAMING_ALLOWANCE = 64 * 1024;

export const FAILED = 'Failed to fetch remote media';

const failed = () => new MatrixError(502, 'M_UNKNOWN', FAILED);

function errorBody(body: Buffer): { errcode?: unknown } | undefined {
  const text = body.toString('utf8').trim();
  if (!text.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as { errcode?: unknown }) : {};
  } catch {
    return {};
  }
}

/**
 * Whether an answer says the server does not have the endpoint at all (so
 * the deprecated one is to be tried), as Synapse judges it: 404 or 405 with
 * M_UNRECOGNIZED or with a body that is not JSON (older servers), or 400
 * M_UNRECOGNIZED (older Synapses).
 */
export function isUnknownEndpoint(status: number, body: Buffer): boolean {
  const json = errorBody(body);
  if (status === 404 || status === 405) return json === undefined || json.errcode === 'M_UNRECOGNIZED';
  return status === 400 && json?.errcode === 'M_UNRECOGNIZED';
}

/** A server name as a path segment: its port's `:` as it is (a path may hold it), anything else encoded. */
function serverSegment(server: string): string {
  return encodeURIComponent(server).replace(/%3A/gi, ':');
}

function header(res: RawFederationResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class RemoteMediaFetcher {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly d: RemoteFetchDeps) {}

  private tooLarge(): MatrixError {
    return new MatrixError(502, 'M_TOO_LARGE', `Requested file is too large > ${this.d.maxBytes} bytes`);
  }

  /** `mediaId` of `server`, fetched whole; rejects with a MatrixError as the file header says. */
  async download(server: string, mediaId: string, waitMs: number): Promise<RemoteFile> {
    if (!this.d.client.allowsDestination(server)) throw new MatrixError(403, 'M_FORBIDDEN', `Federation denied with ${server}.`);
    // A slot is taken here, or handed over by a finishing fetch.
    if (this.active < MAX_CONCURRENT) this.active++;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    try {
      return await this.fetch(server, mediaId, waitMs);
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }

  private async fetch(server: string, mediaId: string, waitMs: number): Promise<RemoteFile> {
    try {
      const res = await this.get(server, `/_matrix/federation/v1/media/download/${encodeURIComponent(mediaId)}`, { timeout_ms: waitMs }, this.d.maxBytes + FRAMING_ALLOWANCE);
      if (res.status === 200) return await this.fromMultipart(res);
      if (!isUnknownEndpoint(res.status, res.body)) return this.refused(server, mediaId, res);
      this.d.logger.debug({ server, mediaId, status: res.status }, 'no federation media endpoint there: trying /_matrix/media/v3/download');
      const legacy = await this.get(
        server,
        `/_matrix/media/v3/download/${serverSegment(server)}/${encodeURIComponent(mediaId)}`,
        { allow_remote: 'false', timeout_ms: waitMs },
        this.d.maxBytes,
      );
      if (legacy.status !== 200) return this.refused(server, mediaId, legacy);
      return { contentType: header(legacy, 'content-type') ?? null, uploadName: filenameFromDisposition(header(legacy, 'content-disposition')), body: legacy.body };
    } catch (err) {
      if (err instanceof MatrixError) throw err;
      if (err instanceof FederationResponseTooLarge || err instanceof FetchTooLargeError) throw this.tooLarge();
      this.d.logger.warn({ server, mediaId, err: err instanceof FederationRequestError ? err.message : (err as Error).message }, 'could not fetch remote media');
      throw failed();
    }
  }

  private get(server: string, path: string, query: Record<string, string | number>, maxBytes: number): Promise<RawFederationResponse> {
    return this.d.client.requestRaw({ destination: server, method: 'GET', path, query, maxBytes, timeoutMs: this.d.timeoutMs ?? 60_000 });
  }

  /** A non-200 answer: the remote's 404 is ours, anything else 502. */
  private refused(server: string, mediaId: string, res: RawFederationResponse): never {
    this.d.logger.info({ server, mediaId, status: res.status }, 'remote server refused a media download');
    if (res.status === 404) throw new MatrixError(404, 'M_NOT_FOUND', 'Not found');
    throw failed();
  }

  private async fromMultipart(res: RawFederationResponse): Promise<RemoteFile> {
    const boundary = multipartBoundary(header(res, 'content-type'));
    if (boundary === undefined) throw new MultipartError('the answer is not multipart/mixed');
    const parts = parseMultipart(res.body, boundary);
    if (parts.length !== 2) throw new MultipartError(`${parts.length} parts, not 2`);
    const [meta, media] = parts as [(typeof parts)[0], (typeof parts)[0]];
    if (!/^application\/json\s*(;|$)/i.test(meta.headers['content-type'] ?? '')) throw new MultipartError('the first part is not JSON');
    const location = media.headers['location'];
    if (location !== undefined) {
      let url: URL;
      try {
        url = new URL(location);
      } catch {
        throw new MultipartError('the Location is not a URL');
      }
      const fetched = await this.d.fetchLocation(url);
      return { contentType: fetched.contentType, uploadName: filenameFromDisposition(fetched.contentDisposition ?? undefined), body: fetched.body };
    }
    if (media.body.length > this.d.maxBytes) throw this.tooLarge();
    return { contentType: media.headers['content-type'] ?? null, uploadName: filenameFromDisposition(media.headers['content-disposition']), body: media.body };
  }
}
