/**
 * systemd.journal.JournalHandler over journald's stdout stream protocol
 * (what systemd-cat and sd_journal_stream_fd(3) use; Node has no unix
 * datagram sockets for the native protocol): connect to the stream socket,
 * send the header
 *
 *   <identifier>\n<unit id, empty>\n<default priority>\n<level prefix 1>\n
 *   <forward to syslog 0>\n<forward to kmsg 0>\n<forward to console 0>\n
 *
 * then one entry per line, each prefixed with its syslog priority as `<N>`
 * (journalLines; the sink writes text already framed so).
 */
import { statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { AsyncSink } from './sinks.js';

/** The header sd_journal_stream_fd() writes, byte for byte. */
export function journalStreamHeader(identifier: string, priority = 6): string {
  return `${identifier}\n\n${priority}\n1\n0\n0\n0\n`;
}

/** Each line of `text` as an entry of priority `priority`. */
export function journalLines(text: string, priority: number): string {
  let out = '';
  for (const line of text.split('\n')) out += `<${priority}>${line}\n`;
  return out;
}

/** Whether `path` is a socket one could connect to (journald not running: no). */
export function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

export class JournalSink extends AsyncSink<Socket> {
  constructor(socketPath: string, identifier: string) {
    super(connect({ path: socketPath }), `journald (${socketPath}) failed; the journal handler's lines are dropped`);
    this.out.unref();
    // Nothing comes back on this stream; journald may close it on shutdown.
    this.out.on('data', () => undefined);
    this.out.write(journalStreamHeader(identifier));
  }

  close(): Promise<void> {
    if (this.failed || this.out.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      // journald answers our end with its own; do not wait for ever if it does not.
      const timer = setTimeout(() => {
        this.out.destroy();
        resolve();
      }, 2000);
      timer.unref();
      this.out.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.out.end();
    });
  }
}
