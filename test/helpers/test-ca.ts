/**
 * A certificate authority for tests, made with the openssl command line:
 * one CA per test process (in a temporary directory), and leaf
 * certificates it signs for the names a test server answers to
 * (`localhost`, 127.0.0.1 and ::1 by default). Servers are given the leaf's
 * full chain; clients trust the CA through `federation_custom_ca_list`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM file). */
  certPath: string;
  keyPath: string;
}

export interface TestLeaf {
  /** The leaf certificate followed by the CA certificate (PEM). */
  chainPath: string;
  keyPath: string;
}

let shared: TestCa | undefined;
let serial = 0;

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a new CA (P-256, valid two days). */
export function createTestCa(name = 'Axon Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'axon-ca-'));
  const keyPath = join(dir, 'ca.key');
  const certPath = join(dir, 'ca.crt');
  openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  ); // prettier-ignore
  return { dir, certPath, keyPath };
}

/** The process's CA, made on first use. */
export function testCa(): TestCa {
  return (shared ??= createTestCa());
}

/**
 * A server certificate signed by `ca` for `names`: DNS names, and IP
 * addresses (written as they are, e.g. `127.0.0.1`, `::1`).
 */
export function issueLeaf(names: readonly string[] = ['localhost', '127.0.0.1', '::1'], ca: TestCa = testCa()): TestLeaf {
  const id = `leaf-${process.pid}-${++serial}`;
  const keyPath = join(ca.dir, `${id}.key`);
  const csrPath = join(ca.dir, `${id}.csr`);
  const certPath = join(ca.dir, `${id}.crt`);
  const chainPath = join(ca.dir, `${id}.chain.pem`);
  const extPath = join(ca.dir, `${id}.ext`);
  const san = names.map((n) => (/^[\d.]+$/.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(extPath, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  const cn = names[0] ?? 'localhost';
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', `/CN=${cn}`], ca.dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csrPath,
      '-CA',
      ca.certPath,
      '-CAkey',
      ca.keyPath,
      '-set_serial',
      String(Date.now() * 1000 + serial),
      '-out',
      certPath,
      '-days',
      '2',
      '-extfile',
      extPath,
    ],
    ca.dir,
  );
  writeFileSync(chainPath, readFileSync(certPath, 'utf8') + readFileSync(ca.certPath, 'utf8'));
  return { chainPath, keyPath };
}

/** An undici Agent that trusts only the test CA (the client side of the TLS test servers). */
export function testCaAgent(): Agent {
  return new Agent({ connect: { ca: readFileSync(testCa().certPath, 'utf8') } });
}
