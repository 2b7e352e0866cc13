/** New local media ids: 24 random ASCII letters, as Synapse makes them (and so within layout.ts's checks). */
import { randomBytes } from 'node:crypto';

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const MEDIA_ID_LENGTH = 24;

export function newMediaId(): string {
  let out = '';
  while (out.length < MEDIA_ID_LENGTH) {
    for (const b of randomBytes(MEDIA_ID_LENGTH * 2)) {
      // 208 = 4 * 52: rejecting the rest keeps every letter equally likely.
      if (b < 208) out += LETTERS[b % 52];
      if (out.length === MEDIA_ID_LENGTH) break;
    }
  }
  return out;
}

/** An `mxc://` URI for local media. */
export function mxcUri(serverName: string, mediaId: string): string {
  return `mxc://${serverName}/${mediaId}`;
}
