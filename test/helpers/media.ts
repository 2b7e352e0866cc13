/**
 * Media fixtures for the admin and preview tests: uploads through the real
 * POST /_matrix/media/v3/upload (media-http.ts), and cached remote media,
 * which only federation would fetch, so its rows and files are written
 * directly, in Synapse's layout.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MediaLayout } from '../../src/services/media/layout.js';
import { upload } from './media-http.js';
import type { TestServer } from './server.js';
import type { TestUser } from './users.js';

export interface Uploaded {
  mxc: string;
  mediaId: string;
}

/** Uploads `body` as `user` (failing the test when the upload fails); answers its mxc URI and media id. */
export async function uploadMedia(t: TestServer, user: TestUser, body: Buffer | string, opts: { contentType?: string; fileName?: string } = {}): Promise<Uploaded> {
  const res = await upload(t, user.accessToken, body, { contentType: opts.contentType ?? 'application/octet-stream', filename: opts.fileName });
  if (res.status !== 200 || !res.mediaId) throw new Error(`upload failed: ${res.status} ${JSON.stringify(res.json)}`);
  return { mxc: String(res.json.content_uri), mediaId: res.mediaId };
}

export function layoutOf(t: TestServer): MediaLayout {
  return new MediaLayout(t.config.media_store_path);
}

/** A cached copy of another server's media: its row, its file and one thumbnail file. */
export async function insertRemoteMedia(
  t: TestServer,
  m: { origin: string; mediaId: string; filesystemId: string; lastAccessTs: number | null; createdTs?: number; quarantinedBy?: string | null; sha256?: string | null },
): Promise<{ file: string; thumbnailDir: string }> {
  const layout = layoutOf(t);
  const file = layout.remoteContent(m.origin, m.filesystemId);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `remote ${m.mediaId}`);
  const thumbnailDir = layout.remoteThumbnailDir(m.origin, m.filesystemId);
  await mkdir(thumbnailDir, { recursive: true });
  await writeFile(join(thumbnailDir, '32-32-image-png-crop'), 'thumb');
  await t.server.ctx.database.db
    .insertInto('remote_media')
    .values({
      media_origin: m.origin,
      media_id: m.mediaId,
      filesystem_id: m.filesystemId,
      media_type: 'image/png',
      media_length: 6,
      upload_name: 'remote.png',
      created_ts: m.createdTs ?? m.lastAccessTs ?? Date.now(),
      last_access_ts: m.lastAccessTs,
      quarantined_by: m.quarantinedBy ?? null,
      sha256: m.sha256 ?? null,
    })
    .execute();
  return { file, thumbnailDir };
}

export const exists = (path: string) => existsSync(path);
