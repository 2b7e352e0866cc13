/**
 * What main.ts prints when the command fails: one `axon: …` line per
 * problem the operator is expected to fix (a StartupError, a usage error, a
 * port that cannot be bound), and for anything else — a bug — the stack too.
 */
import { StartupError } from '../startup-error.js';
import { UsageError } from './args.js';

/** Node's codes for a listener that cannot bind: the port is taken, privileged, or the address is not this host's. */
const LISTEN_CODES = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);

function isListenFailure(err: Error): boolean {
  const e = err as NodeJS.ErrnoException;
  return e.syscall === 'listen' && LISTEN_CODES.has(e.code ?? '');
}

export function failureText(err: unknown): string {
  if (err instanceof StartupError) return err.problems.map((p) => `axon: ${p}\n`).join('');
  if (err instanceof UsageError) return `axon: ${err.message}\n`;
  if (!(err instanceof Error)) return `axon: ${String(err)}\n`;
  if (isListenFailure(err)) return `axon: cannot listen: ${err.message}\n`;
  return `axon: ${err.message}\n${err.stack ?? ''}\n`;
}
