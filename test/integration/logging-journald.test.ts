/**
 * systemd.journal.JournalHandler over journald's stdout stream protocol:
 * against a real systemd-journald started here in its own namespace
 * (`systemd-journald <ns>` listens on /run/systemd/journal.<ns>/stdout,
 * read back with `journalctl --namespace`), against the system's journald
 * when this machine runs one, and byte for byte against a socket standing
 * in for journald (the header sd_journal_stream_fd(3) sends, `<N>` lines).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Logging, startLogging, subsystemLogger } from '../../src/logger.js';

const JOURNALD = '/lib/systemd/systemd-journald';
const canRunJournald = existsSync(JOURNALD) && existsSync('/usr/bin/journalctl') && process.getuid?.() === 0;
if (!canRunJournald) process.stderr.write('skipping the journald namespace test: needs root and the systemd package (systemd-journald, journalctl)\n');
const systemJournal = existsSync('/run/systemd/journal/stdout') && existsSync('/usr/bin/journalctl');

const cleanups: (() => void | Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function logConfig(socket: string | undefined, identifier: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'axon-journal-'));
  const path = join(dir, 'log.yaml');
  writeFileSync(
    path,
    `version: 1
formatters:
  journal_fmt: {format: '%(name)s: [%(request)s] %(message)s'}
handlers:
  journal:
    class: systemd.journal.JournalHandler
    formatter: journal_fmt
    SYSLOG_IDENTIFIER: ${identifier}
${socket ? `    axon_socket: ${socket}\n` : ''}  file: {class: logging.FileHandler, filename: ${dir}/homeserver.log}
root: {level: DEBUG, handlers: [journal, file]}
`,
  );
  return path;
}

async function logSome(path: string): Promise<Logging> {
  const logging = startLogging({});
  logging.configure({ log_config: path });
  const log = subsystemLogger(logging.logger, 'axon.rooms');
  log.debug('a debug line');
  log.info('an info line');
  log.warn('a warning');
  log.error('an error');
  log.fatal('critical');
  log.error({ err: Object.assign(new Error('it broke'), { stack: 'Error: it broke\n    at here' }) }, 'with a stack');
  await logging.dispose();
  return logging;
}

interface Entry {
  SYSLOG_IDENTIFIER?: string;
  PRIORITY?: string;
  MESSAGE?: string;
}

async function readJournal(args: string[], identifier: string, want: number): Promise<Entry[]> {
  for (let i = 0; i < 100; i++) {
    const out = execFileSync('journalctl', [...args, '-o', 'json', '--no-pager', `SYSLOG_IDENTIFIER=${identifier}`], { encoding: 'utf8' });
    const entries = out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Entry);
    if (entries.length >= want) return entries;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`journald did not record ${want} entries for ${identifier}`);
}

const EXPECTED = [
  ['7', 'axon.rooms: [sentinel] a debug line'],
  ['6', 'axon.rooms: [sentinel] an info line'],
  ['4', 'axon.rooms: [sentinel] a warning'],
  ['3', 'axon.rooms: [sentinel] an error'],
  ['2', 'axon.rooms: [sentinel] critical'],
  ['3', 'axon.rooms: [sentinel] with a stack err="it broke"'],
  ['3', 'Error: it broke'],
  ['3', '    at here'],
];

describe.skipIf(!canRunJournald)('a real journald (its own namespace)', () => {
  it('records each line under SYSLOG_IDENTIFIER with the priority of its level', async () => {
    const ns = `axontest${process.pid}`;
    const runDir = `/run/systemd/journal.${ns}`;
    const journald: ChildProcess = spawn(JOURNALD, [ns], { stdio: 'ignore' });
    const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    cleanups.push(async () => {
      journald.kill('SIGTERM');
      await new Promise((r) => (journald.exitCode !== null ? r(null) : journald.once('exit', r)));
      rmSync(runDir, { recursive: true, force: true });
      rmSync(`/var/log/journal/${machineId}.${ns}`, { recursive: true, force: true });
      rmSync(`/run/log/journal/${machineId}.${ns}`, { recursive: true, force: true });
    });
    for (let i = 0; i < 100 && !existsSync(`${runDir}/stdout`); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(`${runDir}/stdout`)).toBe(true);

    await logSome(logConfig(`${runDir}/stdout`, 'axon-test'));
    const entries = await readJournal(['--namespace', ns], 'axon-test', EXPECTED.length);
    expect(entries.map((e) => [e.PRIORITY, e.MESSAGE])).toEqual(EXPECTED);
  });
});

describe.skipIf(!systemJournal)("this machine's journald", () => {
  it('records the lines at /run/systemd/journal/stdout', async () => {
    const ident = `axon-test-${process.pid}`;
    await logSome(logConfig(undefined, ident));
    const entries = await readJournal([], ident, EXPECTED.length);
    expect(entries.map((e) => [e.PRIORITY, e.MESSAGE])).toEqual(EXPECTED);
  });
});

describe('the stream protocol, byte for byte', () => {
  it("sends sd_journal_stream_fd's header, then one <N>-prefixed line per line", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-journal-'));
    const path = join(dir, 'stdout');
    let received = '';
    const closed = new Promise<void>((resolve) => {
      const server: Server = createServer((sock) => {
        sock.on('data', (d: Buffer) => (received += d.toString('utf8')));
        sock.on('end', () => {
          sock.end();
          server.close();
          resolve();
        });
      });
      server.listen(path);
    });
    await new Promise((r) => setTimeout(r, 50));
    await logSome(logConfig(path, 'synapse'));
    await closed;
    expect(received).toBe('synapse\n\n6\n1\n0\n0\n0\n' + EXPECTED.map(([p, m]) => `<${p}>${m}\n`).join(''));
  });

  it('without journald, one warning and the handler is dropped; the others go on', async () => {
    const path = logConfig('/run/systemd/journal.nowhere/stdout', 'axon');
    const logging = startLogging({});
    logging.configure({ log_config: path });
    logging.logger.info('still logged');
    await logging.dispose();
    const file = readFileSync(join(path, '..', 'homeserver.log'), 'utf8');
    expect(file).toContain("handler 'journal' (systemd.journal.JournalHandler): journald is not running here (no /run/systemd/journal.nowhere/stdout); handler dropped\n");
    expect(file.match(/journald is not running/g)).toHaveLength(1);
    expect(file).toContain('still logged\n');
  });
});
