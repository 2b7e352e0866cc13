/**
 * systemd.journal.JournalHandler over journald's stdout stream protocol
 * (what systemd-cat and sd_journal_stream_fd(3) use; Node has no unix
 * datagram sockets for the native protocol): connect to the stream socket,
 * send the header
 *
 *   <identifier>\n<unit id, empty>\n<default priority>\n<level prefix 1>\n
 *   <forward to syslog 0>\n<forward to kmsg 0>\n<forward to console 0>\n
 *
 * then one entry per line, each prefixed with its syslog priority as `<N>`.
 */
import { statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { PendingWrites, reportOnce, type Sink } from './sinks.js';

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

export class JournalSink implements Sink {
  private readonly socket: Socket;
  private readonly pending = new PendingWrites();
  private failed = false;
  private readonly report = reportOnce();

  constructor(socketPath: string, identifier: string) {
    this.socket = connect({ path: socketPath });
    this.socket.unref();
    this.socket.on('error', (err) => {
      this.failed = true;
      this.pending.abandon();
      this.report(`journald (${socketPath}) failed; the journal handler's lines are dropped`, err);
    });
    // Nothing comes back on this stream; journald may close it on shutdown.
    this.socket.on('data', () => undefined);
    this.socket.write(journalStreamHeader(identifier));
  }

  /** `text` is already prefixed, see journalLines. */
  write(text: string): void {
    if (!this.failed) this.socket.write(text, this.pending.add());
  }

  flush(): Promise<void> {
    return this.pending.settled();
  }

  close(): Promise<void> {
    if (this.failed || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      // journald answers our end with its own; do not wait for ever if it does not.
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 2000);
      timer.unref();
      this.socket.once('close', done);
      this.socket.end();
    });
  }

  exitSync(): void {}
  reopen(): void {}
}
