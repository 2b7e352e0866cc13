/** Recognises the image formats we decode (and vouch for) by their first bytes, whatever type the uploader claimed. */

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp';

/** How many leading bytes sniffFormat needs. */
export const SNIFF_BYTES = 16;

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function sniffFormat(head: Buffer): ImageFormat | undefined {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 8 && head.subarray(0, 8).equals(PNG_MAGIC)) return 'png';
  const six = head.toString('latin1', 0, 6);
  if (six === 'GIF87a' || six === 'GIF89a') return 'gif';
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return undefined;
}

const CLAIMED: Readonly<Record<string, ImageFormat>> = {
  'image/jpeg': 'jpeg',
  'image/jpg': 'jpeg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

/** Whether content claimed to be one of those image types is plainly something else. */
export function contradictsClaimedImage(essence: string, head: Buffer): boolean {
  const claimed = CLAIMED[essence];
  return claimed !== undefined && sniffFormat(head) !== claimed;
}
