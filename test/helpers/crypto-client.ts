/**
 * matrix-js-sdk clients with the SDK's Rust crypto (the WASM build of
 * matrix-sdk-crypto), for end-to-end encryption tests against the real
 * server. The crypto store is in memory (no IndexedDB is needed under Node).
 *
 * Every HTTP exchange a client makes goes through an HttpTrace, so a test
 * that times out can say which request the server refused or answered
 * oddly: the e2ee exchanges are kept with their bodies (shortened).
 * AXON_E2E_TRACE=1 prints every exchange as it happens; AXON_E2E_LOG=1
 * lets the SDK (and the Rust tracing) log to the console.
 */
import { type AuthDict, ClientEvent, createClient, type MatrixClient, MatrixError, SyncState } from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { type Agent, fetch as undiciFetch } from 'undici';
import { vi } from 'vitest';
import { testCaAgent } from './test-ca.js';

/** Generous: the WASM crypto on a busy 2-core machine is slow to start. */
export const E2E_WAIT_MS = 30_000;

/** Silences the SDK's logger and the console (the Rust tracing prints there) unless AXON_E2E_LOG is set. */
export function quietSdk(): void {
  if (process.env.AXON_E2E_LOG) return;
  const root = sdkLogger as unknown as { methodFactory: unknown; rebuild?: () => void };
  root.methodFactory = () => () => undefined;
  root.rebuild?.();
  for (const m of ['log', 'debug', 'info', 'warn', 'error', 'trace'] as const) vi.spyOn(console, m).mockImplementation(() => undefined);
}

interface Exchange {
  who: string;
  method: string;
  path: string;
  status: number | string;
  request?: string;
  response?: string;
}

const E2EE_PATH = /\/(keys\/|sendToDevice\/|room_keys\/)/;
const short = (s: string | undefined, n: number) => (s === undefined ? undefined : s.length > n ? `${s.slice(0, n)}…` : s);

let testCaDispatcher: Agent | undefined;

/** fetch over HTTPS trusting the test CA (the federation test servers' certificates). */
async function httpsFetch(url: URL, init: RequestInit | undefined): Promise<Response> {
  testCaDispatcher ??= testCaAgent();
  const opts = { ...init, dispatcher: testCaDispatcher } as Parameters<typeof undiciFetch>[1];
  return (await undiciFetch(url.href, opts)) as unknown as Response;
}

/** Records the HTTP traffic of the clients of a test. */
export class HttpTrace {
  private readonly failures: Exchange[] = [];
  private readonly e2ee: Exchange[] = [];
  private readonly syncExtras: Exchange[] = [];

  /** A fetch for createClient's fetchFn, naming the client in the trace. */
  fetchFor(who: string): typeof fetch {
    return async (input, init) => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      const method = init?.method ?? 'GET';
      const request = typeof init?.body === 'string' ? init.body : undefined;
      let res: Response;
      try {
        res = url.protocol === 'https:' ? await httpsFetch(url, init) : await fetch(input, init);
      } catch (err) {
        // Aborted long polls when a client stops are not worth keeping.
        if (!(err instanceof Error && err.name === 'AbortError')) this.keep(this.failures, { who, method, path: url.pathname, status: String(err), request: short(request, 300) });
        throw err;
      }
      const wanted = !res.ok || E2EE_PATH.test(url.pathname) || url.pathname.endsWith('/sync') || process.env.AXON_E2E_TRACE;
      if (!wanted) return res;
      const text = await res
        .clone()
        .text()
        .catch(() => '');
      const ex: Exchange = { who, method, path: url.pathname, status: res.status, request: short(request, 600), response: short(text, 600) };
      if (process.env.AXON_E2E_TRACE) process.stderr.write(`[http] ${describe(ex)}\n`);
      // UIA's 401s are steps of a flow, not failures.
      if (!res.ok && res.status !== 401) this.keep(this.failures, ex);
      else if (!res.ok) this.keep(this.e2ee, ex);
      else if (E2EE_PATH.test(url.pathname)) this.keep(this.e2ee, ex);
      else if (url.pathname.endsWith('/sync')) {
        // Only the e2ee parts of a sync response are of interest here.
        const parts = syncE2eeParts(text);
        if (parts) this.keep(this.syncExtras, { ...ex, request: undefined, response: short(parts, 600) });
      }
      return res;
    };
  }

  private keep(list: Exchange[], ex: Exchange): void {
    list.push(ex);
    if (list.length > 40) list.shift();
  }

  /** The recent failures and e2ee exchanges, for an error message. */
  report(): string {
    const out: string[] = [];
    if (this.failures.length) out.push('failed requests:', ...collapse(this.failures, 10));
    if (this.e2ee.length) out.push('recent e2ee requests:', ...collapse(this.e2ee, 10));
    if (this.syncExtras.length) out.push('recent e2ee parts of sync responses:', ...collapse(this.syncExtras, 6));
    return out.length ? `\n${out.join('\n')}` : '';
  }
}

/** The last `n` distinct exchanges (by client, method, path and status), each with how often it happened. */
function collapse(list: Exchange[], n: number): string[] {
  const seen = new Map<string, { ex: Exchange; times: number }>();
  for (const ex of list) {
    const key = `${ex.who} ${ex.method} ${ex.path} ${ex.status}`;
    const prev = seen.get(key);
    seen.delete(key);
    seen.set(key, { ex, times: (prev?.times ?? 0) + 1 });
  }
  return [...seen.values()].slice(-n).map(({ ex, times }) => `  ${describe(ex)}${times > 1 ? ` (×${times})` : ''}`);
}

function describe(e: Exchange): string {
  return `[${e.who}] ${e.method} ${e.path} -> ${e.status}${e.request ? ` req=${e.request}` : ''}${e.response ? ` res=${e.response}` : ''}`;
}

/** The to_device and device_lists parts of a sync response (with the key counts), when either is not empty. */
function syncE2eeParts(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const toDevice = (body['to_device'] as { events?: unknown[] } | undefined)?.events ?? [];
    const lists = body['device_lists'] as { changed?: unknown[]; left?: unknown[] } | undefined;
    const parts: Record<string, unknown> = {};
    if (toDevice.length) parts['to_device'] = toDevice.map((e) => (e as { type?: unknown }).type);
    if (lists?.changed?.length || lists?.left?.length) parts['device_lists'] = lists;
    if (body['device_one_time_keys_count'] !== undefined) parts['otk_count'] = body['device_one_time_keys_count'];
    return parts['to_device'] || parts['device_lists'] ? JSON.stringify(parts) : undefined;
  } catch {
    return undefined;
  }
}

export interface CryptoAccount {
  userId: string;
  deviceId: string;
  accessToken: string;
  password: string;
  client: MatrixClient;
}

/**
 * Logs in with the SDK (a new device), sets up the Rust crypto with an
 * in-memory store, and starts the client, resolving after its first sync.
 */
export async function logInWithCrypto(
  baseUrl: string,
  trace: HttpTrace,
  opts: { user: string; password: string; deviceName: string; initialSyncLimit?: number },
): Promise<CryptoAccount> {
  const fetchFn = trace.fetchFor(opts.deviceName);
  const anon = createClient({ baseUrl, fetchFn });
  const login = await anon.loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: opts.user },
    password: opts.password,
    initial_device_display_name: opts.deviceName,
  });
  const client = createClient({ baseUrl, fetchFn, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id });
  await client.initRustCrypto({ useIndexedDB: false });
  const synced = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${opts.deviceName}: no first sync${trace.report()}`)), E2E_WAIT_MS);
    const onSync = (state: SyncState) => {
      if (state !== SyncState.Prepared && state !== SyncState.Syncing) return;
      clearTimeout(timer);
      client.off(ClientEvent.Sync, onSync);
      resolve();
    };
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: opts.initialSyncLimit ?? 20, lazyLoadMembers: false });
  await synced;
  return { userId: login.user_id, deviceId: login.device_id, accessToken: login.access_token, password: opts.password, client };
}

/**
 * A UIA callback for uploads that need the password (cross-signing keys):
 * first without auth, then with m.login.password in the server's session,
 * as Element does once the user typed the password.
 */
export function passwordAuth(account: CryptoAccount): <T>(makeRequest: (auth: AuthDict | null) => Promise<T>) => Promise<T> {
  return async (makeRequest) => {
    try {
      return await makeRequest(null);
    } catch (err) {
      if (!(err instanceof MatrixError) || err.httpStatus !== 401) throw err;
      const session = (err.data as { session?: string }).session;
      return await makeRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: account.userId }, password: account.password, session } as AuthDict);
    }
  };
}

/** Polls `check` until it returns a value (not undefined), or fails naming `what` and the trace. */
export async function eventually<T>(trace: HttpTrace, what: string, check: () => T | undefined | Promise<T | undefined>, ms = E2E_WAIT_MS): Promise<T> {
  const until = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > until) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out waiting for ${what}${why}${trace.report()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
