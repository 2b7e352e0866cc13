/** `database.allow_unsafe_locale` (Synapse's key) as the loader reads it; the check itself: test/integration/database-setup.test.ts. */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { configErrorOf, removeTempTrees, tempTree } from './helpers.js';

afterAll(removeTempTrees);

const PG = 'server_name: example.com\nreport_stats: false\ndatabase:\n  name: psycopg2\n  args:\n    database: axon\n';
const file = (text: string) => join(tempTree({ 'homeserver.yaml': text }), 'homeserver.yaml');

describe('database.allow_unsafe_locale', () => {
  it('is read from the database section, and absent unless set', () => {
    expect(loadConfig([file(`${PG}  allow_unsafe_locale: true\n`)], { env: {} }).database).toMatchObject({ kind: 'postgres', allow_unsafe_locale: true });
    expect(loadConfig([file(`${PG}  allow_unsafe_locale: false\n`)], { env: {} }).database).toMatchObject({ allow_unsafe_locale: false });
    expect(loadConfig([file(PG)], { env: {} }).database).not.toHaveProperty('allow_unsafe_locale');
  });

  it('is kept when DATABASE_URL replaces the section, as the pool sizes are', () => {
    const config = loadConfig([file(`${PG}  allow_unsafe_locale: true\n`)], { env: { DATABASE_URL: 'postgres://axon@localhost/axon' } });
    expect(config.database).toMatchObject({ connectionString: 'postgres://axon@localhost/axon', allow_unsafe_locale: true });
  });

  it('must be true or false', () => {
    const err = configErrorOf(() => loadConfig([file(`${PG}  allow_unsafe_locale: maybe\n`)], { env: {} }));
    expect(err.message).toMatch(/database\.allow_unsafe_locale: expected true or false, got "maybe"$/);
  });
});
