/**
 * Who is asking: the origin of a federation request, from its X-Matrix
 * Authorization header, checked against that server's verify key (through
 * the keyring) over the method, the URI as sent, our name and the body.
 * Anything short of a signature that verifies is 401 M_UNAUTHORIZED; an
 * origin outside `federation_domain_whitelist` is 403 M_FORBIDDEN (checked
 * first, so such a server is never asked for its keys).
 */
import type { Logger } from 'pino';
import { parseXMatrix, verifyRequest, XMatrixParseError, type XMatrixAuth } from '../../core/x-matrix.js';
import { MatrixError } from '../../matrix-error.js';
import type { Keyring } from './keyring.js';
import { parseServerName } from './server-name.js';

export interface FederationRequest {
  method: string;
  /** Path and query string exactly as received. */
  uri: string;
  /** The Authorization header(s) as received. */
  authorization: string | readonly string[] | undefined;
  /** The parsed JSON body; undefined when there is none. */
  content?: unknown;
}

export interface RequestAuthOptions {
  serverName: string;
  keyring: Pick<Keyring, 'verifyKey'>;
  /** `federation_domain_whitelist`: when set, only these origins are served. */
  domainWhitelist?: readonly string[];
  logger: Logger;
}

const unauthorized = (message: string) => new MatrixError(401, 'M_UNAUTHORIZED', message);

export class FederationRequestAuth {
  private readonly whitelist: ReadonlySet<string> | undefined;

  constructor(private readonly o: RequestAuthOptions) {
    this.whitelist = o.domainWhitelist ? new Set(o.domainWhitelist) : undefined;
  }

  /** The origin that signed `r`; throws the spec's error otherwise. */
  async authenticate(r: FederationRequest): Promise<string> {
    const headers = r.authorization === undefined ? [] : typeof r.authorization === 'string' ? [r.authorization] : r.authorization;
    const xMatrix = headers.filter((h) => /^X-Matrix\s/i.test(h));
    if (xMatrix.length === 0) throw unauthorized('Missing Authorization headers');
    const auths = xMatrix.map((h) => this.parse(h));
    const origin = (auths[0] as XMatrixAuth).origin;
    if (auths.some((x) => x.origin !== origin)) throw unauthorized('Authorization headers name more than one origin');
    // Before the signature: a server outside the list is not asked for its keys.
    if (this.whitelist && !this.whitelist.has(origin)) throw new MatrixError(403, 'M_FORBIDDEN', `Federation denied with ${origin}.`);
    for (const auth of auths) await this.check(auth, r);
    return origin;
  }

  private parse(header: string): XMatrixAuth {
    let auth: XMatrixAuth;
    try {
      auth = parseXMatrix(header);
    } catch (err) {
      if (err instanceof XMatrixParseError) throw unauthorized(`Malformed Authorization header: ${err.message}`);
      throw err;
    }
    if (parseServerName(auth.origin) === undefined) throw unauthorized('Malformed Authorization header: origin is not a server name');
    return auth;
  }

  private async check(auth: XMatrixAuth, r: FederationRequest): Promise<void> {
    if (auth.destination !== undefined && auth.destination !== this.o.serverName) {
      throw unauthorized(`The request is for ${auth.destination.slice(0, 255)}, not this server`);
    }
    const publicKey = await this.o.keyring.verifyKey(auth.origin, auth.key);
    if (publicKey === undefined) throw unauthorized(`Failed to find any key to satisfy: ${auth.origin} ${auth.key.slice(0, 100)}`);
    const checked = verifyRequest({ auth, method: r.method, uri: r.uri, content: r.content, ourName: this.o.serverName, publicKey });
    if (!checked.ok) {
      this.o.logger.info({ origin: auth.origin, key: auth.key, reason: checked.reason }, 'federation request refused');
      throw unauthorized(`Invalid signature for server ${auth.origin} with key ${auth.key}`);
    }
  }
}
