/**
 * Receives an upload's bytes: streamed into a fresh file under
 * `<media_store>/incoming/`, hashed (sha256) and counted on the way, never
 * held in memory whole. Going over the size limit, or the client going
 * away, removes the partial file; the caller renames a complete one into
 * place.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export interface ReceivedFile {
  /** The temporary file under incoming/, for the caller to rename or remove. */
  path: string;
  length: number;
  sha256: string;
}

export class UploadTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`upload larger than ${limit} bytes`);
  }
}

export class UploadAborted extends Error {}

/**
 * Streams `source` into a new file in `incomingDir`. Rejects with
 * UploadTooLarge past `limit` bytes (what is still arriving is read and
 * dropped, so the client gets its answer) and UploadAborted when the source
 * fails or ends early; either way no file is left behind.
 */
export async function receiveToFile(source: Readable, incomingDir: string, limit: number): Promise<ReceivedFile> {
  await mkdir(incomingDir, { recursive: true });
  const path = join(incomingDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
  // A larger buffer than the default 16 KiB: socket chunks are up to 64 KiB, and pausing for each costs.
  const out = createWriteStream(path, { flags: 'wx', highWaterMark: 256 * 1024 });
  const hash = createHash('sha256');
  let length = 0;

  const result = await new Promise<{ ok: true } | { ok: false; err: Error }>((resolve) => {
    let settled = false;
    let ended = false;
    const finish = (r: { ok: true } | { ok: false; err: Error }) => {
      if (settled) return;
      settled = true;
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onSourceError);
      source.off('close', onClose);
      resolve(r);
    };
    const fail = (err: Error) => {
      if (settled) return;
      out.destroy();
      // Keep reading (and dropping) what the client still sends, so it can read our answer.
      source.resume();
      finish({ ok: false, err });
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) return fail(new UploadTooLarge(limit));
      hash.update(chunk);
      if (!out.write(chunk)) {
        source.pause();
        out.once('drain', () => {
          if (!settled) source.resume();
        });
      }
    };
    const onEnd = () => {
      ended = true;
      out.end();
    };
    const onSourceError = (err: Error) => fail(new UploadAborted(err.message));
    const onClose = () => {
      if (!ended) fail(new UploadAborted('client went away before the upload ended'));
    };
    out.on('error', (err) => fail(err));
    // 'close' (not 'finish'): the descriptor is released before the file is renamed.
    out.on('close', () => finish({ ok: true }));
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onSourceError);
    source.on('close', onClose);
    if (source.readableEnded) onEnd();
    else source.resume();
  });

  if (!result.ok) {
    await new Promise<void>((resolve) => (out.closed ? resolve() : out.once('close', () => resolve())));
    await rm(path, { force: true });
    throw result.err;
  }
  return { path, length, sha256: hash.digest('hex') };
}
