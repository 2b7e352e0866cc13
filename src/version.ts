/** The server's name and version, as /_matrix/federation/v1/version and the admin API report it. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'axon-homeserver' && pkg.version) return pkg.version;
    } catch {
      // try the next location: src/ under tsx, dist/src/ when built
    }
  }
  return '0.0.0';
}

export const SERVER_NAME_TAG = 'Axon';
export const SERVER_VERSION = readVersion();
