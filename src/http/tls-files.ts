/**
 * The certificate and private key of `tls: true` listeners, read from
 * Synapse's `tls_certificate_path` (PEM: the server's certificate, then its
 * intermediates, as certbot's fullchain.pem) and `tls_private_key_path`
 * (PEM, unencrypted, as certbot's privkey.pem). Read at start-up and again
 * on SIGHUP; every problem is a StartupError naming the key and the file.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { StartupError } from '../startup-error.js';

export interface TlsPaths {
  certificatePath: string;
  privateKeyPath: string;
}

export interface TlsFiles {
  /** What node:https and setSecureContext take. */
  options: { cert: string; key: string };
  /** Facts for the log (never the key). */
  certificate: { subject: string; valid_to: string; expired: boolean; fingerprint256: string };
}

function readPem(key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied for the user Axon runs as' : (code ?? String(err));
    throw new StartupError(`${key}: cannot read ${path} (${why})`);
  }
}

/** Reads and checks both files: a PEM certificate, a PEM private key, and that they belong together. */
export function readTlsFiles(paths: TlsPaths): TlsFiles {
  const cert = readPem('tls_certificate_path', paths.certificatePath);
  const key = readPem('tls_private_key_path', paths.privateKeyPath);
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) {
    throw new StartupError(`tls_certificate_path: ${paths.certificatePath} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new StartupError(`tls_certificate_path: ${paths.certificatePath} is not a valid PEM certificate (${(err as Error).message})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new StartupError(
      `tls_private_key_path: ${paths.privateKeyPath} is not a valid PEM private key, or it is encrypted (Axon needs it without a passphrase) (${(err as Error).message})`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new StartupError(
      `tls_private_key_path: the key in ${paths.privateKeyPath} does not belong to the certificate in ${paths.certificatePath} (the first certificate there must be the server's own)`,
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new StartupError(`tls_certificate_path: ${paths.certificatePath} with ${paths.privateKeyPath} cannot be used for TLS (${(err as Error).message})`);
  }
  const validTo = new Date(x509.validTo);
  return {
    options: { cert, key },
    certificate: {
      subject: x509.subject.replace(/\n/g, ', '),
      valid_to: validTo.toISOString(),
      expired: validTo.getTime() < Date.now(),
      fingerprint256: x509.fingerprint256,
    },
  };
}
