/**
 * Where media files live under `media_store_path`, in Synapse's layout, so
 * that a media store copied from Synapse (or back) keeps working:
 *
 *   local_content/ab/cd/efgh…                      an uploaded file
 *   local_thumbnails/ab/cd/efgh…/W-H-TOP-SUB-METHOD  its thumbnails
 *   remote_content/SERVER/ab/cd/efgh…               a remote file (by filesystem id)
 *   remote_thumbnail/SERVER/ab/cd/efgh…/W-H-TOP-SUB-METHOD
 *
 * The first four characters of the id become two directory levels. Every
 * id and server name is checked before it becomes a path component, so no
 * request can name a file outside the store.
 */
import { join } from 'node:path';
import { MatrixError } from '../../matrix-error.js';

/** Media ids Synapse and we generate are letters; others (remote) may use `-`, `_` and digits too. */
const MEDIA_ID = /^[A-Za-z0-9_-]{1,255}$/;
/** A server name: hostname or IP literal, optional port. */
const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,255})(?::\d{1,5})?$/;

export function isValidMediaId(id: string): boolean {
  return MEDIA_ID.test(id);
}

export function isValidServerName(name: string): boolean {
  return (
    SERVER_NAME.test(name) &&
    !name
      .split(':')[0]!
      .split('.')
      .some((p) => p === '..')
  );
}

/** 404 M_NOT_FOUND for an id or server name that cannot be a stored media item. */
export function checkMediaId(id: string): void {
  if (!isValidMediaId(id)) throw new MatrixError(404, 'M_NOT_FOUND', 'Not found');
}

export function checkServerName(name: string): void {
  if (!isValidServerName(name)) throw new MatrixError(404, 'M_NOT_FOUND', 'Not found');
}

function split(id: string): [string, string, string] {
  if (id.length < 5) return [id.slice(0, 2).padEnd(2, '_'), id.slice(2, 4).padEnd(2, '_'), id.slice(4) || '_'];
  return [id.slice(0, 2), id.slice(2, 4), id.slice(4)];
}

function checked(id: string): string {
  if (!isValidMediaId(id)) throw new Error(`not a media id: ${JSON.stringify(id)}`);
  return id;
}

function checkedServer(name: string): string {
  if (!isValidServerName(name)) throw new Error(`not a server name: ${JSON.stringify(name)}`);
  return name;
}

/** `W-H-TOP-SUB-METHOD`, Synapse's thumbnail file name (`image/png` gives TOP `image`, SUB `png`). */
export function thumbnailFileName(width: number, height: number, contentType: string, method: string): string {
  const [top = 'application', sub = 'octet-stream'] = contentType.split('/', 2);
  return `${width}-${height}-${top}-${sub}-${method}`;
}

export class MediaLayout {
  constructor(readonly root: string) {}

  localContent(mediaId: string): string {
    return join(this.root, 'local_content', ...split(checked(mediaId)));
  }

  localThumbnailDir(mediaId: string): string {
    return join(this.root, 'local_thumbnails', ...split(checked(mediaId)));
  }

  localThumbnail(mediaId: string, width: number, height: number, contentType: string, method: string): string {
    return join(this.localThumbnailDir(mediaId), thumbnailFileName(width, height, contentType, method));
  }

  remoteContent(server: string, fileId: string): string {
    return join(this.root, 'remote_content', checkedServer(server), ...split(checked(fileId)));
  }

  remoteThumbnailDir(server: string, fileId: string): string {
    return join(this.root, 'remote_thumbnail', checkedServer(server), ...split(checked(fileId)));
  }

  remoteThumbnail(server: string, fileId: string, width: number, height: number, contentType: string, method: string): string {
    return join(this.remoteThumbnailDir(server, fileId), thumbnailFileName(width, height, contentType, method));
  }

  /** Where uploads are written before they are complete (then renamed into place, so no half file is ever served). */
  incoming(): string {
    return join(this.root, 'incoming');
  }
}
