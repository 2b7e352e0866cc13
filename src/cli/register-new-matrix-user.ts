#!/usr/bin/env node
/**
 * register_new_matrix_user: creates a user through shared-secret
 * registration (/_synapse/admin/v1/register), with Synapse's flags and
 * prompts, so the guides' first-admin step carries over:
 *
 *   register_new_matrix_user -c /etc/axon/homeserver.yaml http://localhost:8008
 *
 * It asks for whatever the flags leave out. Passwords are read without echo
 * on a terminal; when stdin is not a terminal, answers are read line by
 * line, so scripts can pipe them in.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { readRawConfig } from '../config/load.js';
import { sharedSecretMac } from '../services/shared-secret-mac.js';

const DEFAULT_SERVER_URL = 'http://localhost:8008';

const USAGE = `usage: register_new_matrix_user [-h] [-u USER] [--exists-ok] [-p PASSWORD | --password-file PASSWORD_FILE]
                                [-t USER_TYPE] [-a | --no-admin] (-c CONFIG | -k SHARED_SECRET)
                                [server_url]`;

const HELP = `${USAGE}

Used to register new users with a given homeserver when registration has been
disabled. The homeserver must be configured with the 'registration_shared_secret'
option set.

positional arguments:
  server_url            URL to use to talk to the homeserver. By default, tries to find a
                        suitable URL from the configuration file. Otherwise, defaults to
                        '${DEFAULT_SERVER_URL}'.

options:
  -h, --help            show this help message and exit
  -u USER, --user USER  Local part of the new user. Will prompt if omitted.
  --exists-ok           Do not fail if user already exists.
  -p PASSWORD, --password PASSWORD
                        New password for user. Will prompt for a password if this flag and
                        \`--password-file\` are both omitted.
  --password-file PASSWORD_FILE
                        File containing the new password for user. If set, will override
                        \`--password\`.
  -t USER_TYPE, --user_type USER_TYPE
                        User type (support, bot, or one of user_types.extra_user_types)
  -a, --admin           Register new user as an admin. Will prompt if --no-admin is not set
                        either.
  --no-admin            Register new user as a regular user. Will prompt if --admin is not
                        set either.
  -c CONFIG, --config CONFIG
                        Path to server config file. Used to read in shared secret.
  -k SHARED_SECRET, --shared-secret SHARED_SECRET
                        Shared secret as defined in server config file.`;

/** A failure that ends the program with a message and an exit status. */
class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const usageError = (msg: string) => new Exit(2, `${USAGE}\nregister_new_matrix_user: error: ${msg}`);

interface Args {
  user?: string;
  password?: string;
  passwordFile?: string;
  userType?: string;
  admin?: boolean;
  config: string[];
  sharedSecret?: string;
  existsOk: boolean;
  serverUrl?: string;
  help: boolean;
}

const VALUE_OPTIONS: Record<string, keyof Args> = {
  '-u': 'user',
  '--user': 'user',
  '-p': 'password',
  '--password': 'password',
  '--password-file': 'passwordFile',
  '-t': 'userType',
  '--user_type': 'userType',
  '-c': 'config',
  '--config': 'config',
  '-k': 'sharedSecret',
  '--shared-secret': 'sharedSecret',
};

export function parseArgs(argv: string[]): Args {
  const args: Args = { config: [], existsOk: false, help: false };
  let adminFlag: string | undefined;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    if (a === '-h' || a === '--help') {
      args.help = true;
      continue;
    }
    if (a === '--exists-ok') {
      args.existsOk = true;
      continue;
    }
    if (a === '-a' || a === '--admin' || a === '--no-admin') {
      const name = a === '--no-admin' ? '--no-admin' : '-a/--admin';
      if (adminFlag !== undefined && adminFlag !== name) throw usageError(`argument ${name}: not allowed with argument ${adminFlag}`);
      adminFlag = name;
      args.admin = a !== '--no-admin';
      continue;
    }
    // --opt=value, -xVALUE, or the value in the next argument.
    let opt = a;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      opt = a.slice(0, eq);
      value = a.slice(eq + 1);
    } else if (!a.startsWith('--') && a.length > 2) {
      opt = a.slice(0, 2);
      value = a.slice(2);
    }
    const key = VALUE_OPTIONS[opt];
    if (!key) throw usageError(`unrecognized arguments: ${a}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw usageError(`argument ${opt}: expected one argument`);
    }
    if (key === 'config') args.config.push(value);
    else (args as unknown as Record<string, string>)[key] = value;
  }
  if (args.help) return args;
  if (positional.length > 1) throw usageError(`unrecognized arguments: ${positional.slice(1).join(' ')}`);
  args.serverUrl = positional[0];
  if (args.password !== undefined && args.passwordFile !== undefined) {
    throw usageError('argument --password-file: not allowed with argument -p/--password');
  }
  if (args.config.length > 0 && args.sharedSecret !== undefined) {
    throw usageError('argument -k/--shared-secret: not allowed with argument -c/--config');
  }
  if (args.config.length === 0 && args.sharedSecret === undefined) {
    throw usageError('one of the arguments -c/--config -k/--shared-secret is required');
  }
  return args;
}

// ---------------------------------------------------------------------------
// Answers from stdin: lines (a terminal echoes them itself), or a password
// typed in raw mode with no echo.

class Answers {
  private started = false;
  private buffer = '';
  private ended = false;
  private wake: (() => void) | undefined;
  private hidden: { text: string; done: (s: string) => void } | undefined;

  constructor(
    private readonly input: NodeJS.ReadStream,
    private readonly output: NodeJS.WriteStream,
  ) {}

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.input.setEncoding('utf8');
    this.input.on('data', (chunk: string) => this.onData(chunk));
    this.input.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  private onData(chunk: string): void {
    if (!this.hidden) {
      this.buffer += chunk;
      this.wake?.();
      return;
    }
    for (const ch of chunk) {
      const h = this.hidden;
      if (!h) {
        this.buffer += ch;
        continue;
      }
      if (ch === '\r' || ch === '\n' || ch === '\u0004') {
        this.hidden = undefined;
        h.done(h.text);
      } else if (ch === '\u0003') {
        this.input.setRawMode?.(false);
        this.output.write('\n');
        process.exit(130);
      } else if (ch === '\u007f' || ch === '\b') {
        h.text = h.text.slice(0, -1);
      } else {
        h.text += ch;
      }
    }
  }

  /** The next line, without its line ending; '' at end of input. */
  async line(prompt: string): Promise<string> {
    this.output.write(prompt);
    this.start();
    this.input.resume();
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl >= 0) {
        const line = this.buffer.slice(0, nl).replace(/\r$/, '');
        this.buffer = this.buffer.slice(nl + 1);
        if (!this.input.isTTY) this.output.write('\n');
        return line;
      }
      if (this.ended) {
        const rest = this.buffer;
        this.buffer = '';
        this.output.write('\n');
        return rest;
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }

  /** A password: typed with no echo on a terminal, else the next line. */
  async secret(prompt: string): Promise<string> {
    if (!this.input.isTTY || typeof this.input.setRawMode !== 'function') return this.line(prompt);
    this.output.write(prompt);
    this.start();
    this.input.setRawMode(true);
    this.input.resume();
    try {
      return await new Promise<string>((done) => {
        this.hidden = { text: '', done };
      });
    } finally {
      this.input.setRawMode(false);
      this.output.write('\n');
    }
  }

  close(): void {
    if (this.started) this.input.pause();
  }
}

// ---------------------------------------------------------------------------

function readFileArg(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Exit(1, `Error accessing file ${path} (${what}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** The shared secret and, when it names one, the client listener's URL, from the config files. */
function fromConfig(paths: string[]): { secret: string; serverUrl?: string } {
  let raw: Record<string, unknown>;
  let configDir: string;
  try {
    ({ raw, configDir } = readRawConfig(paths));
  } catch (err) {
    if (err instanceof ConfigError) throw new Exit(1, err.message);
    throw err;
  }
  const inline = raw['registration_shared_secret'];
  const file = raw['registration_shared_secret_path'];
  if (inline !== undefined && inline !== null && typeof inline !== 'string') throw new Exit(1, 'registration_shared_secret is not a string.');
  if (file !== undefined && file !== null && typeof file !== 'string') throw new Exit(1, 'registration_shared_secret_path is not a string.');
  let secret: string;
  if (!inline && !file) {
    throw new Exit(1, "No 'registration_shared_secret' or 'registration_shared_secret_path' defined in config.");
  } else if (inline && file) {
    throw new Exit(1, "Conflicting options 'registration_shared_secret' and 'registration_shared_secret_path' are both defined in config file.");
  } else if (inline) {
    secret = inline;
  } else {
    const path = file as string;
    secret = readFileArg(isAbsolute(path) ? path : resolve(configDir, path), 'registration_shared_secret_path').trim();
    if (!secret) throw new Exit(1, 'The secret given via `registration_shared_secret_path` must not be empty.');
  }
  return { secret, serverUrl: clientListenerUrl(raw['listeners']) };
}

/** As Synapse's script: the first plain-HTTP listener serving `client`, as http://localhost:PORT. */
function clientListenerUrl(listeners: unknown): string | undefined {
  if (!Array.isArray(listeners)) return undefined;
  for (const l of listeners as Record<string, unknown>[]) {
    if (l === null || typeof l !== 'object' || l['type'] !== 'http' || l['tls'] === true) continue;
    const resources = Array.isArray(l['resources']) ? (l['resources'] as Record<string, unknown>[]) : [];
    const client = resources.some((r) => r !== null && typeof r === 'object' && Array.isArray(r['names']) && r['names'].includes('client'));
    if (client && (typeof l['port'] === 'number' || typeof l['port'] === 'string')) return `http://localhost:${l['port']}`;
  }
  return undefined;
}

async function jsonOf(res: Response): Promise<Record<string, unknown> | undefined> {
  try {
    const v = (await res.json()) as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function httpFailure(res: Response, body: Record<string, unknown> | undefined): Exit {
  let msg = `ERROR! Received ${res.status} ${res.statusText}`;
  if (res.status >= 400 && res.status < 500 && typeof body?.['error'] === 'string') msg += `\n${body['error']}`;
  return new Exit(1, msg);
}

async function request(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new Exit(1, `ERROR! Could not reach ${url}: ${cause}`);
  }
}

async function requestRegistration(
  out: (s: string) => void,
  r: { user: string; password: string; serverUrl: string; secret: string; admin: boolean; userType?: string; existsOk: boolean },
): Promise<void> {
  const url = `${r.serverUrl.replace(/\/+$/, '')}/_synapse/admin/v1/register`;
  const nonceRes = await request(url);
  const nonceBody = await jsonOf(nonceRes);
  if (nonceRes.status !== 200) throw httpFailure(nonceRes, nonceBody);
  const nonce = nonceBody?.['nonce'];
  if (typeof nonce !== 'string') throw new Exit(1, `ERROR! ${url} gave no nonce`);

  const mac = sharedSecretMac(r.secret, { nonce, username: r.user, password: r.password, admin: r.admin, userType: r.userType });
  out('Sending registration request...');
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nonce, username: r.user, password: r.password, mac, admin: r.admin, user_type: r.userType ?? null }),
  });
  const body = await jsonOf(res);
  if (res.status !== 200) {
    if (r.existsOk && body?.['errcode'] === 'M_USER_IN_USE') {
      out('User already exists. Skipping.');
      return;
    }
    throw httpFailure(res, body);
  }
  out('Success!');
}

export async function main(argv: string[]): Promise<number> {
  const out = (s: string) => void process.stdout.write(`${s}\n`);
  const answers = new Answers(process.stdin, process.stdout);
  try {
    const args = parseArgs(argv);
    if (args.help) {
      out(HELP);
      return 0;
    }
    let secret: string;
    let configUrl: string | undefined;
    if (args.sharedSecret !== undefined) {
      secret = args.sharedSecret;
    } else {
      ({ secret, serverUrl: configUrl } = fromConfig(args.config));
    }
    let password = args.passwordFile !== undefined ? readFileArg(args.passwordFile, 'password-file').trim() : args.password;
    let serverUrl = args.serverUrl;
    if (!serverUrl) {
      serverUrl = configUrl ?? DEFAULT_SERVER_URL;
      if (!configUrl) {
        process.stderr.write(
          args.config.length > 0
            ? `Unable to find a suitable HTTP listener in the configuration file. Trying ${serverUrl} as a last resort.\n`
            : `No server url or configuration file given. Defaulting to ${serverUrl}.\n`,
        );
      }
    }

    let user = args.user;
    if (!user) {
      let defaultUser: string | undefined;
      try {
        defaultUser = userInfo().username || undefined;
      } catch {
        defaultUser = undefined;
      }
      user = await answers.line(defaultUser ? `New user localpart [${defaultUser}]: ` : 'New user localpart: ');
      if (!user && defaultUser) user = defaultUser;
    }
    if (!user) throw new Exit(1, 'Invalid user name');

    if (!password) {
      password = await answers.secret('Password: ');
      if (!password) throw new Exit(1, 'Password cannot be blank.');
      const confirm = await answers.secret('Confirm password: ');
      if (password !== confirm) throw new Exit(1, 'Passwords do not match');
    }

    let admin = args.admin;
    if (admin === undefined) {
      const a = (await answers.line('Make admin [no]: ')).trim().toLowerCase();
      admin = ['y', 'yes', 'true'].includes(a);
    }
    answers.close();

    await requestRegistration(out, { user, password, serverUrl, secret, admin, userType: args.userType, existsOk: args.existsOk });
    return 0;
  } catch (err) {
    if (err instanceof Exit) {
      process.stderr.write(`${err.message}\n`);
      return err.code;
    }
    throw err;
  } finally {
    answers.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`register_new_matrix_user: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
