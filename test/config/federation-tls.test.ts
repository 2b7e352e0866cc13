/** The federation client's TLS keys in homeserver.yaml: Synapse's defaults and validation. */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { configErrorOf, removeTempTrees, tempTree } from './helpers.js';

afterAll(removeTempTrees);

const MINIMAL = 'server_name: example.com\nreport_stats: false\n';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function load(extra: string, files: Record<string, string> = {}) {
  const dir = tempTree({ 'homeserver.yaml': MINIMAL + extra, ...files });
  return { dir, load: () => loadConfig([join(dir, 'homeserver.yaml')], { env: {} }) };
}

describe('federation TLS settings', () => {
  it("has Synapse's defaults", () => {
    const c = load('').load();
    expect(c.federation_verify_certificates).toBe(true);
    expect(c.federation_certificate_verification_whitelist).toEqual([]);
    expect(c.federation_custom_ca_list).toBeUndefined();
    expect(c.federation_client_minimum_tls_version).toBe('1');
  });

  it('reads each key; CA paths resolve against the config directory', () => {
    const t = load(
      'federation_verify_certificates: false\nfederation_certificate_verification_whitelist: ["*.lan"]\n' +
        'federation_custom_ca_list: [ca.pem]\nfederation_client_minimum_tls_version: 1.2\n',
      { 'ca.pem': PEM },
    );
    const c = t.load();
    expect(c.federation_verify_certificates).toBe(false);
    expect(c.federation_certificate_verification_whitelist).toEqual(['*.lan']);
    expect(c.federation_custom_ca_list).toEqual([join(t.dir, 'ca.pem')]);
    expect(c.federation_client_minimum_tls_version).toBe('1.2');
    expect(load('federation_client_minimum_tls_version: "1.3"\n').load().federation_client_minimum_tls_version).toBe('1.3');
  });

  it('refuses a missing CA file, a file without a certificate, a bad TLS version', () => {
    expect(configErrorOf(load('federation_custom_ca_list: [nope.pem]\n').load).message).toMatch(/federation_custom_ca_list\[0\].*no such file/);
    expect(configErrorOf(load('federation_custom_ca_list: [ca.pem]\n', { 'ca.pem': 'hello' }).load).message).toMatch(/no PEM certificate/);
    expect(configErrorOf(load('federation_client_minimum_tls_version: "1.4"\n').load).message).toMatch(/federation_client_minimum_tls_version/);
    expect(configErrorOf(load('federation_verify_certificates: maybe\n').load).message).toMatch(/federation_verify_certificates/);
  });
});
