/**
 * Command-line arguments, spelled as Synapse's `python -m synapse.app.homeserver`
 * spells them, so the guides' commands carry over:
 *   -c/--config-path (repeatable; a directory means its *.yaml files)
 *   --generate-config, --generate-keys, -H/--server-name, --report-stats=yes|no
 *   --data-directory, --config-directory (= --keys-directory)
 * and one optional command word: `start` (the default) or `migrate`.
 */
import { parseArgs } from 'node:util';

export interface CliArgs {
  command: 'start' | 'migrate' | 'help' | 'version';
  configPaths: string[];
  generateConfig: boolean;
  generateKeys: boolean;
  serverName?: string;
  reportStats?: boolean;
  dataDirectory?: string;
  keysDirectory?: string;
  openPrivatePorts: boolean;
}

export class UsageError extends Error {}

export const USAGE = `Usage: axon [start|migrate] [options]

  -c, --config-path PATH     a config file, or a directory of *.yaml files;
                             may be given several times, later ones override
      --generate-config      write a new config (and signing key) and exit
      --generate-keys        write any missing signing key and exit
  -H, --server-name NAME     the server name, with --generate-config
      --report-stats yes|no  with --generate-config
      --data-directory DIR   with --generate-config: where the media store, pid file
                             and embedded database go (default: the config's directory);
                             for a service, the directory its user owns, e.g. /var/lib/axon
      --config-directory DIR, --keys-directory DIR
                             with --generate-*: where the signing key and log config
                             go (default: the config file's directory)
      --open-private-ports   with --generate-config: listen on all addresses, not
                             only loopback (for containers)
  -h, --help                 this text
      --version              print the version

With no options, uses ./homeserver.yaml, generating one for server name
'localhost' with an embedded PostgreSQL on first run.`;

function yesNo(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const s = v.toLowerCase();
  if (s === 'yes' || s === 'true') return true;
  if (s === 'no' || s === 'false') return false;
  throw new UsageError(`--report-stats must be 'yes' or 'no', got '${v}'`);
}

export function parseCliArgs(argv: string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'config-path': { type: 'string', short: 'c', multiple: true },
        'generate-config': { type: 'boolean' },
        'generate-keys': { type: 'boolean' },
        'generate-missing-configs': { type: 'boolean' },
        'server-name': { type: 'string', short: 'H' },
        'report-stats': { type: 'string' },
        'data-directory': { type: 'string' },
        'config-directory': { type: 'string' },
        'keys-directory': { type: 'string' },
        'open-private-ports': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const word = positionals[0] ?? 'start';
  if (positionals.length > 1 || !['start', 'migrate'].includes(word)) {
    throw new UsageError(`unknown command '${positionals.join(' ')}'`);
  }
  const command = values.help ? 'help' : values.version ? 'version' : (word as 'start' | 'migrate');
  return {
    command,
    configPaths: values['config-path'] ?? [],
    generateConfig: values['generate-config'] ?? false,
    generateKeys: (values['generate-keys'] ?? false) || (values['generate-missing-configs'] ?? false),
    serverName: values['server-name'],
    reportStats: yesNo(values['report-stats']),
    dataDirectory: values['data-directory'],
    // Synapse: --config-directory is another name for --keys-directory.
    keysDirectory: values['keys-directory'] ?? values['config-directory'],
    openPrivatePorts: values['open-private-ports'] ?? false,
  };
}
