/** The PostgreSQL version check: 14 or later, as Synapse requires; server_version_num read as PostgreSQL numbers releases. */
import { describe, expect, it } from 'vitest';
import { formatServerVersion, versionProblem } from '../../src/storage/database-setup.js';

describe('PostgreSQL version', () => {
  it('reads server_version_num as PostgreSQL spells releases', () => {
    expect(formatServerVersion(150020)).toBe('15.20');
    expect(formatServerVersion(140000)).toBe('14.0');
    expect(formatServerVersion(180006)).toBe('18.6');
    expect(formatServerVersion(90624)).toBe('9.6.24');
  });

  it('accepts 14 and later', () => {
    for (const v of [140000, 140013, 150020, 170002, 180006]) expect(versionProblem(v)).toBeUndefined();
  });

  it('refuses 13 and earlier, naming the version and the minimum', () => {
    expect(versionProblem(130016)).toBe(
      'PostgreSQL 13.16 is too old: Axon, like Synapse, needs PostgreSQL 14 or later; upgrade the database server (on Debian: pg_upgradecluster)',
    );
    expect(versionProblem(90624)).toMatch(/^PostgreSQL 9\.6\.24 is too old/);
  });
});
