/**
 * The one way Axon opens an outbound HTTP connection to an address a user
 * or a remote server chose (URL previews, push gateways; the federation
 * client next): an undici Agent whose connector obeys an AddressPolicy.
 *
 * - Host names: the socket's own DNS lookup resolves every address, and
 *   the host is refused if ANY of them is blocked (as Synapse drops such a
 *   resolution whole); the connection then goes to a checked address, so a
 *   second DNS answer cannot differ from the checked one.
 * - IP literals (which skip the lookup): checkUrl refuses them before any
 *   request, and the connected socket's peer address is checked once more
 *   whatever path led to it.
 * - Redirects: the agent follows none itself; every hop a caller follows
 *   (by hand, or through undici's redirect interceptor composed onto
 *   `dispatcher`) opens its connection through the same connector, so a
 *   redirect to a blocked address is refused like a first request.
 *
 * Built by createGuardedAgent with the ranges and the connection options
 * of its user; there is no shared instance, each service owns its own and
 * closes it.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import { type AddressPolicy, parseIp } from './ip-ranges.js';

export class BlockedAddressError extends Error {
  constructor(
    readonly host: string,
    setting: string,
  ) {
    super(`the address of ${host} is refused by ${setting}`);
    this.name = 'BlockedAddressError';
  }
}

export interface GuardedAgentOptions {
  policy: AddressPolicy;
  /** Connecting (TCP and TLS handshake). */
  connectTimeoutMs: number;
  /** Waiting for the response headers, and between body chunks. */
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Connections per origin. */
  connections: number;
  /** TLS settings for https origins (a CA list, a minimum version, …); the connector's own lookup always wins. */
  tls?: Omit<ConnectionOptions, 'lookup' | 'host' | 'port' | 'socket'>;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** The BlockedAddressError somewhere in a chain of causes (undici wraps connector errors), if any. */
export function blockedCause(err: unknown): BlockedAddressError | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    if (e instanceof BlockedAddressError) return e;
    e = (e as Error & { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * What a lookup answers for a host name: its addresses, or an error when
 * there are none or when any is refused (one bad address refuses the host).
 */
export function screenAddresses(hostname: string, addresses: readonly LookupAddress[], policy: AddressPolicy): LookupAddress[] | Error {
  if (addresses.length === 0) return Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' });
  if (addresses.some((a) => !policy.allows(a.address))) return new BlockedAddressError(hostname, policy.keys.blacklist);
  return [...addresses];
}

export class GuardedAgent {
  /** Pass as `dispatcher` to undici's request/fetch. */
  readonly dispatcher: Agent;

  constructor(
    readonly policy: AddressPolicy,
    o: Omit<GuardedAgentOptions, 'policy'>,
  ) {
    const refused = (host: string) => new BlockedAddressError(host, policy.keys.blacklist);
    const lookup = (hostname: string, options: { family?: number; all?: boolean; hints?: number }, callback: LookupCallback) => {
      dnsLookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints ?? 0 }, (err, addresses) => {
        if (err) return callback(err, []);
        const screened = screenAddresses(hostname, addresses, policy);
        if (screened instanceof Error) return callback(screened, []);
        if (options.all) return callback(null, screened);
        return callback(null, screened[0]!.address, screened[0]!.family);
      });
    };
    const base = buildConnector({ ...o.tls, lookup, timeout: o.connectTimeoutMs } as buildConnector.BuildOptions);
    const connect: buildConnector.connector = (opts, callback) =>
      base(opts, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('no socket'), null);
        const peer = (socket as Socket).remoteAddress;
        if (peer === undefined || !policy.allows(peer)) {
          socket.destroy();
          return callback(refused(opts.hostname), null);
        }
        return callback(null, socket);
      });
    this.dispatcher = new Agent({ connect, headersTimeout: o.headersTimeoutMs, bodyTimeout: o.bodyTimeoutMs, connections: o.connections });
  }

  /** Throws BlockedAddressError when the URL's host is an IP literal the policy refuses (host names are checked when connecting). */
  checkUrl(url: URL): void {
    if (parseIp(url.hostname) && !this.policy.allows(url.hostname.replace(/^\[|\]$/g, ''))) {
      throw new BlockedAddressError(url.hostname, this.policy.keys.blacklist);
    }
  }

  /** Waits for requests in flight, then closes the connections. */
  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** Aborts requests in flight and closes the connections now. */
  async destroy(): Promise<void> {
    await this.dispatcher.destroy().catch(() => undefined);
  }
}

export function createGuardedAgent(o: GuardedAgentOptions): GuardedAgent {
  const { policy, ...rest } = o;
  return new GuardedAgent(policy, rest);
}
